"""Which core runs: the hot modules compiled by mypyc from this very source, or the source itself.

`tools/compile_core.py` (run by `./install` and the Docker image) compiles `COMPILED_MODULES`
into `.build/compiled/` (git-ignored; `KEFU_COMPILED_DIR` moves it), with a manifest that holds
the SHA-256 of every source the build read. `agents/core/__init__.py` calls `activate()` once:
when the manifest's digest equals the digest of the sources on disk now, an import finder maps
each compiled module's name to its extension file, ahead of the source. Otherwise the pure
modules run, and one warning line says why. The same source gives the same results either way
(tests/unit/core/test_compiled_core.py runs both and compares them).

A finder rather than the packages' `__path__`: the store's modules are compiled too, and a
finder answers for exactly the listed modules, whatever package is imported first. This module
itself is never compiled: it decides.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import cast

# By measurement (/work/notes/prof/worker_prof.py, bench/costs.py): the pure per-event path;
# and values.py, the leader's per-agent division (bench.leader_round: ~20,000 window_values a
# round at 10,000 agents; ~4.8 -> ~2.8 us a call compiled, team_values ~7.5 -> ~5.0). It only builds
# streams/contract/floor.py's structs, which stay uncompiled. status_spans.py: the leader's
# status time, four windows per agent with status points each round (~14 -> ~2 us an agent).
# Left out on purpose: the modules that define msgspec structs or enums mypyc cannot keep
# (buyer_state.py, detail_rows.py, counters.py say why), the readers and the async code, and
# the modules whose objects travel by pickle or `dataclasses.replace` (policy, service_clock,
# windows: the report processes get them): a compiled class with a required `__init__` argument
# or a frozen dataclass does not unpickle.
COMPILED_MODULES: tuple[str, ...] = (
    "agents.core.buyer",
    "agents.core.projection",
    "agents.core.details",
    "agents.core.engine",
    "agents.core.values",
    "agents.core.status_spans",
    "agents.store.keys",
    "agents.store.writes",
)
GROUP_LIBRARY = "agents.core.compiled__mypyc"  # mypyc's shared library for the whole group
MANIFEST = "manifest.json"
PURE_ENV = "KEFU_PURE_PYTHON"
DIR_ENV = "KEFU_COMPILED_DIR"
ROOT = Path(__file__).resolve().parents[2]  # where `agents/`, `config/`, `streams/` live

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CoreStatus:
    """What `activate` decided: `compiled` or not, and in a few words why."""

    compiled: bool
    reason: str

    def describe(self) -> str:
        """One phrase for logs, `/healthz` and `--version`: which core runs."""
        kind = "compiled (mypyc)" if self.compiled else "pure Python"
        return f"{kind}: {self.reason}"


def build_dir() -> Path:
    configured = os.environ.get(DIR_ENV)
    return Path(configured) if configured else ROOT / ".build" / "compiled"


def module_path(name: str, root: Path = ROOT) -> Path:
    """The source file of module `name` under `root`."""
    return root.joinpath(*name.split(".")).with_suffix(".py")


def extension_path(name: str, directory: Path) -> Path:
    """Where the build puts module `name`'s extension, for this interpreter."""
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    return directory.joinpath(*name.split(".")).with_name(name.rsplit(".", 1)[-1] + suffix)


def sources_digest(sources: Sequence[str], root: Path = ROOT) -> str:
    """SHA-256 over the named sources (paths relative to `root`) and their contents."""
    digest = hashlib.sha256()
    for relative in sorted(sources):
        digest.update(relative.encode() + b"\0")
        digest.update((root / relative).read_bytes() + b"\0")
    return digest.hexdigest()


def interpreter_tag() -> str:
    """Extensions built for one interpreter do not load into another."""
    return f"{sys.implementation.cache_tag} {importlib.machinery.EXTENSION_SUFFIXES[0]}"


class CompiledFinder:
    """An import finder that answers for the compiled modules only, with their extension files."""

    def __init__(self, directory: Path) -> None:
        self.files = {name: extension_path(name, directory) for name in (*COMPILED_MODULES, GROUP_LIBRARY)}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        file = self.files.get(fullname)
        if file is None:
            return None
        return importlib.util.spec_from_file_location(fullname, file)


def read_manifest(directory: Path, what: str, hint: str) -> dict[str, object] | str:
    """The manifest of the `what` build (compiled, native) in `directory`, or the sentence that
    says why there is none (`hint`: how one is made)."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"no {what} build in {directory} ({hint})"
    except (OSError, ValueError) as exc:
        return f"unreadable {what} build manifest in {directory}: {exc}"
    if not isinstance(manifest, dict):
        return f"unreadable {what} build manifest in {directory}: not a mapping"
    return manifest


def check_build(directory: Path) -> str | None:
    """None when the build in `directory` is complete and made from the sources on disk now;
    otherwise why it cannot be used."""
    manifest = read_manifest(directory, "compiled", "./install builds it")
    if isinstance(manifest, str):
        return manifest
    if manifest.get("modules") != list(COMPILED_MODULES):
        return "the build compiled other modules than agents/core/compiled.py lists (./install rebuilds it)"
    if manifest.get("interpreter") != interpreter_tag():
        return f"the build is for another Python ({manifest.get('interpreter')})"
    missing = [n for n in (*COMPILED_MODULES, GROUP_LIBRARY) if not extension_path(n, directory).is_file()]
    if missing:
        return f"the build lacks {', '.join(missing)} (./install rebuilds it)"
    try:
        current = sources_digest(cast(list[str], manifest.get("sources", [])))
    except OSError as exc:
        return f"a source of the build is unreadable: {exc}"
    if current != manifest.get("digest"):
        return "stale: the sources changed since the build (./install rebuilds it)"
    return None


_status: CoreStatus | None = None


def activate() -> CoreStatus:
    """Decide once per process which core runs, and install the finder if it is the compiled one.

    Must run before any compiled module is imported (agents/core/__init__.py calls it)."""
    global _status
    if _status is not None:
        return _status
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        _status = CoreStatus(False, f"{PURE_ENV}={os.environ[PURE_ENV]}")
        return _status
    directory = build_dir()
    problem = check_build(directory)
    if problem is None:
        sys.meta_path.insert(0, CompiledFinder(directory))
        _status = CoreStatus(True, f"{len(COMPILED_MODULES)} modules from {directory}")
    else:
        _status = CoreStatus(False, problem)
        log.warning("kefu-pulse runs the pure-Python core: %s", problem)
    return _status


def _is_extension(module: ModuleType) -> bool:
    return str(getattr(module, "__file__", "")).endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def core_status() -> CoreStatus:
    """Which core this process runs, judged by the modules actually loaded where possible."""
    status = activate()
    loaded = [sys.modules[n] for n in COMPILED_MODULES if n in sys.modules]
    if status.compiled and not all(_is_extension(module) for module in loaded):
        return CoreStatus(False, "mixed: a compiled module was imported from source before activation")
    return status


async def log_core_at_start() -> None:
    """The worker's start-up line saying which core it runs (a Faust task: streams/commands/main.py)."""
    log.info("core: %s", core_status().describe())
