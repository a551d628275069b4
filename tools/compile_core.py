"""Compile the hot pure modules (agents/core/compiled.py's COMPILED_MODULES) with mypyc.

    .venv/bin/python tools/compile_core.py           build into .build/compiled/ unless up to date
    .venv/bin/python tools/compile_core.py --force   rebuild whatever the manifest says
    .venv/bin/python tools/compile_core.py --require exit 1 unless the build is usable (./test)

Idempotent: the manifest records the digest of every source the build read (the compiled modules
and the project modules they import, transitively), the mypy version and the interpreter; a
second run with the same ones does nothing. Never fails the install: without a C compiler or
Python's headers, or when mypyc fails, it says so in one line and the pure-Python core runs.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import shutil
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["KEFU_PURE_PYTHON"] = "1"  # this process only reads the module list; no warning

from agents.core.compiled import (  # noqa: E402 (the path and the environment first)
    COMPILED_MODULES,
    GROUP_LIBRARY,
    build_dir,
    check_build,
    interpreter_tag,
    module_path,
    sources_digest,
)
from tools.build_steps import options, swap_in, up_to_date  # noqa: E402 (the path first)

OURS = ("agents", "config", "streams")


def project_imports(path: Path) -> set[str]:
    """The project modules `path` imports (module level or not)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in OURS}


def build_sources() -> list[str]:
    """The compiled modules and every project module they reach: what mypyc reads and may bake in
    (types, Final constants), relative to the root."""
    pending = list(COMPILED_MODULES)
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        candidates = (module_path(name), ROOT.joinpath(*name.split("."), "__init__.py"))
        path = next((p for p in candidates if p.is_file()), None)
        if path is None or str(path.relative_to(ROOT)) in seen:
            continue  # a name imported from a module, not a module
        seen.add(str(path.relative_to(ROOT)))
        pending.extend(project_imports(path))
    return sorted(seen)


def wanted_manifest() -> dict[str, object]:
    sources = build_sources()
    return {
        "modules": list(COMPILED_MODULES),
        "sources": sources,
        "digest": sources_digest(sources),
        "mypy": importlib.metadata.version("mypy"),
        "interpreter": interpreter_tag(),
    }


def missing_toolchain() -> str | None:
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        return f"no C compiler ({compiler})"
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not headers.is_file():
        return f"no Python headers ({headers})"
    return None


def compile_into(output: Path, work: Path) -> None:
    """mypyc's C for the group, compiled by setuptools, extensions into `output`."""
    from mypyc.build import mypycify
    from setuptools import Distribution  # type: ignore[import-untyped]
    from setuptools.command.build_ext import build_ext  # type: ignore[import-untyped]

    c_dir = work / "c"
    sources = [str(module_path(name).relative_to(ROOT)) for name in COMPILED_MODULES]
    group = GROUP_LIBRARY.removesuffix("__mypyc")
    extensions = mypycify(sources, opt_level="3", group_name=group, target_dir=str(c_dir), multi_file=True)
    for extension in extensions:  # a dotted group keeps its headers in its package's folder
        extension.include_dirs.append(str(c_dir.joinpath(*group.split(".")[:-1])))
    command = build_ext(Distribution({"ext_modules": extensions}))
    command.build_lib, command.build_temp = str(output), str(work / "temp")
    command.parallel = os.cpu_count() or 1
    command.ensure_finalized()
    command.run()


@contextmanager
def quiet(log_file: Path) -> Iterator[None]:
    """mypyc's and the compiler's chatter (theirs and their children's) into `log_file`."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with log_file.open("w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def build(directory: Path, wanted: dict[str, object]) -> None:
    """Build next to `directory` and swap it in whole: a failed build leaves the old one, which the
    digest then marks stale."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="compile-", dir=directory.parent) as work:
        output = Path(work) / "compiled"
        os.chdir(ROOT)  # mypyc names the modules by their paths from here
        with quiet(directory.parent / "compile.log"):
            compile_into(output, Path(work))
        swap_in(output, directory, wanted)


def main() -> int:
    args = options(__doc__)
    directory = build_dir()
    if args.require:
        problem = check_build(directory)
        if problem is not None:
            print(f"the compiled core is unusable: {problem}", file=sys.stderr)
        return 0 if problem is None else 1
    wanted = wanted_manifest()
    if not args.force and up_to_date(directory, wanted, lambda: check_build(directory)):
        return 0
    problem = missing_toolchain()
    if problem is not None:
        print(f"compiled core not built: {problem}; the pure-Python core runs", file=sys.stderr)
        return 0
    started = time.monotonic()
    print(f"compiling {len(COMPILED_MODULES)} modules with mypyc into {directory} ...", file=sys.stderr)
    try:
        build(directory, wanted)
    except Exception as exc:  # whatever mypyc or the compiler raise, the pure core still runs
        log = directory.parent / "compile.log"
        print(f"compiled core not built ({exc}, see {log}); the pure-Python core runs", file=sys.stderr)
        return 0
    print(f"compiled core built in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
