"""Which outbox encoder runs: the Rust one built from native/, or the Python reference.

`tools/build_native.py` (run by `./install`, `./test` and the Docker image) builds the PyO3
extension `kefu_native` into `.build/native/` (git-ignored; `KEFU_NATIVE_DIR` moves it), with a
manifest holding the SHA-256 of every file under native/ the build read (Cargo.lock included)
and the interpreter it was built for. The extension is loaded once per process when that digest
equals the digest of the files on disk now (`KEFU_NATIVE_SOURCES` names where they are when the
package is installed without the repository, as in the Docker image). Otherwise, or with
`KEFU_PURE_PYTHON=1`, agents/store/outbox.py's Python functions run, and one warning line says
why. Both give the same bytes (tests/unit/store/test_native_outbox.py). The extension also gives
the misrouting check Kafka's murmur2 (`native_murmur2`; else kafka-python's, the same numbers:
tests/unit/store/test_native_murmur2.py), so the outbox encoder's line says for both.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import cast

from agents.core.compiled import MANIFEST as MANIFEST  # the same file name as the compiled core's
from agents.core.compiled import (
    PURE_ENV,
    ROOT,
    extension_path,
    interpreter_tag,
    read_manifest,
    sources_digest,
)
from streams.wire.partitioning import KeyHash

MODULE = "kefu_native"
DIR_ENV = "KEFU_NATIVE_DIR"
SOURCES_ENV = "KEFU_NATIVE_SOURCES"
SKIPPED = ("target",)  # cargo's output, not a source

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NativeStatus:
    active: bool
    reason: str


def build_dir() -> Path:
    configured = os.environ.get(DIR_ENV)
    return Path(configured) if configured else ROOT / ".build" / "native"


def source_dir() -> Path:
    configured = os.environ.get(SOURCES_ENV)
    return Path(configured) if configured else ROOT / "native"


def build_sources(directory: Path) -> list[str]:
    """Every file under `directory` the build reads (its sources, manifests and Cargo.lock),
    relative to it."""
    return sorted(
        str(path.relative_to(directory))
        for path in directory.rglob("*")
        if path.is_file() and path.relative_to(directory).parts[0] not in SKIPPED
    )


def wanted_digest(directory: Path) -> str:
    return sources_digest(build_sources(directory), directory)


def module_file(directory: Path) -> Path:
    return extension_path(MODULE, directory)


def check_build(directory: Path, sources: Path) -> str | None:
    """None when the build in `directory` exists, suits this interpreter and was made from the
    files in `sources` as they are now; otherwise why it cannot be used."""
    manifest = read_manifest(directory, "native", "./install builds it where cargo is present")
    if isinstance(manifest, str):
        return manifest
    if manifest.get("interpreter") != interpreter_tag():
        return f"the native build is for another Python ({manifest.get('interpreter')})"
    if not module_file(directory).is_file():
        return f"the native build lacks {module_file(directory).name} (./install rebuilds it)"
    if not sources.is_dir():
        return f"no native sources at {sources} to check the build against"
    try:
        current = wanted_digest(sources)
    except OSError as exc:
        return f"a native source is unreadable: {exc}"
    if current != manifest.get("digest"):
        return "stale: native/ changed since the build (./install rebuilds it)"
    return None


def load_module(directory: Path) -> ModuleType:
    """The extension in `directory`, imported (ImportError when it does not load)."""
    spec = importlib.util.spec_from_file_location(MODULE, module_file(directory))
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {module_file(directory)}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_decided: tuple[NativeStatus, ModuleType | None] | None = None


def _decide() -> tuple[NativeStatus, ModuleType | None]:
    global _decided
    if _decided is not None:
        return _decided
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        _decided = NativeStatus(False, f"{PURE_ENV}={os.environ[PURE_ENV]}"), None
        return _decided
    directory = build_dir()
    problem = check_build(directory, source_dir())
    module = None
    if problem is None:
        try:
            module = load_module(directory)
        except ImportError as exc:
            problem = f"the native build does not load: {exc}"
    if module is None:
        _decided = NativeStatus(False, problem or "not loaded"), None
        log.warning("kefu-pulse runs the Python outbox encoder: %s", problem)
    else:
        _decided = NativeStatus(True, f"{MODULE} from {directory}"), module
    return _decided


def native_module() -> ModuleType | None:
    """The loaded extension, or None when the Python reference runs."""
    return _decide()[1]


def native_murmur2() -> KeyHash | None:
    """Kafka's murmur2 from the loaded extension (the misrouting check's key hash), or None."""
    return cast(KeyHash | None, getattr(native_module(), "murmur2", None))


def native_status() -> tuple[bool, str]:
    """(active, why): whether the native outbox encoder runs, for the worker's start-up line."""
    status = _decide()[0]
    return status.active, status.reason


async def log_native_at_start() -> None:
    """The worker's start-up line: which outbox encoder runs (a Faust task, streams/commands/main.py)."""
    active, reason = native_status()
    log.info("outbox encoder: %s: %s", "native (Rust)" if active else "Python reference", reason)
