"""Build the native outbox encoder (native/, a PyO3 extension) with maturin into .build/native/.

    .venv/bin/python tools/build_native.py           build unless up to date
    .venv/bin/python tools/build_native.py --force   rebuild
    .venv/bin/python tools/build_native.py --require exit 1 unless the build is usable (./test)

Idempotent: the manifest records the digest of every file under native/ (sources, Cargo.toml,
Cargo.lock) and the interpreter; a second run with the same ones does nothing. Never fails the
install: without cargo (on PATH or in ~/.cargo/bin) or maturin, or when the build fails, it says
so in one line and the Python reference (agents/store/outbox.py) runs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["KEFU_PURE_PYTHON"] = "1"  # this process only checks builds; it loads none

from agents.core.compiled import interpreter_tag  # noqa: E402 (the path and the environment first)
from agents.store.native import (  # noqa: E402
    MODULE,
    build_dir,
    build_sources,
    check_build,
    load_module,
    module_file,
    source_dir,
    wanted_digest,
)
from tools.build_steps import options, swap_in, up_to_date  # noqa: E402

# The sparse index (the only way to crates.io here: its git index is on a host not reached) is
# stable from cargo 1.68. Debian bookworm's cargo (1.65) has it behind a flag, which the build
# turns on for such a cargo.
SPARSE_STABLE = (1, 68)


def wanted_manifest(sources: Path) -> dict[str, object]:
    return {
        "module": MODULE,
        "sources": build_sources(sources),
        "digest": wanted_digest(sources),
        "interpreter": interpreter_tag(),
    }


def find_cargo() -> Path | None:
    found = shutil.which("cargo")
    if found:
        return Path(found)
    home = Path.home() / ".cargo" / "bin" / "cargo"
    return home if home.is_file() else None


def find_maturin() -> Path | None:
    beside = Path(sys.executable).parent / "maturin"
    if beside.is_file():
        return beside
    found = shutil.which("maturin")
    return Path(found) if found else None


def cargo_env(cargo: Path) -> dict[str, str]:
    env = dict(os.environ, PATH=f"{cargo.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    version = subprocess.run([str(cargo), "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"(\d+)\.(\d+)", version)
    if match and (int(match.group(1)), int(match.group(2))) < SPARSE_STABLE:
        env.update(RUSTC_BOOTSTRAP="1", CARGO_UNSTABLE_SPARSE_REGISTRY="true")
    return env


def build(directory: Path, sources: Path, wanted: dict[str, object], cargo: Path, maturin: Path) -> None:
    """maturin's wheel, its extension taken out into a fresh folder swapped in whole: a failed
    build leaves the old one, which the digest then marks stale."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    log_file = directory.parent / "native.log"
    with tempfile.TemporaryDirectory(prefix="native-", dir=directory.parent) as work:
        command = [
            str(maturin),
            "build",
            "--release",
            "--locked",  # Cargo.lock holds versions that build with Debian's Rust 1.63
            "--manifest-path",
            str(sources / "Cargo.toml"),
            "--interpreter",
            sys.executable,
            "--compatibility",
            "linux",  # a wheel for this machine only: nothing to audit
            "--out",
            work,
        ]
        env = cargo_env(cargo)
        env["CARGO_TARGET_DIR"] = str(sources / "target")
        with log_file.open("w") as log:
            subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, check=True)
        output = Path(work) / "native"
        output.mkdir()
        [wheel] = Path(work).glob("*.whl")
        with zipfile.ZipFile(wheel) as archive:
            [member] = [n for n in archive.namelist() if Path(n).name == module_file(output).name]
            module_file(output).write_bytes(archive.read(member))
        swap_in(output, directory, wanted)


def main() -> int:
    args = options(__doc__)
    directory, sources = build_dir(), source_dir()
    if args.require:
        problem = check_build(directory, sources)
        if problem is None:
            try:  # as the worker will: a build that does not import is no build
                load_module(directory)
            except ImportError as exc:
                problem = f"the native build does not load: {exc}"
        if problem is not None:
            print(f"the native outbox encoder is unusable: {problem}", file=sys.stderr)
        return 0 if problem is None else 1
    wanted = wanted_manifest(sources)
    if not args.force and up_to_date(directory, wanted, lambda: check_build(directory, sources)):
        return 0
    cargo, maturin = find_cargo(), find_maturin()
    if cargo is None or maturin is None:
        missing = "cargo (Rust)" if cargo is None else "maturin (pip install -e '.[dev]')"
        print(f"native outbox encoder not built: no {missing}; the Python reference runs", file=sys.stderr)
        return 0
    started = time.monotonic()
    print(f"building the native outbox encoder with {cargo} into {directory} ...", file=sys.stderr)
    try:
        build(directory, sources, wanted, cargo, maturin)
    except (OSError, ValueError, subprocess.CalledProcessError) as exc:
        log = directory.parent / "native.log"
        print(
            f"native outbox encoder not built ({exc}, see {log}); the Python reference runs", file=sys.stderr
        )
        return 0
    print(f"native outbox encoder built in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
