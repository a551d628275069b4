"""What the two build tools (compile_core.py, build_native.py) do alike: their options, whether
a build is up to date, and swapping a finished build in whole."""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Callable
from pathlib import Path

from agents.core.compiled import MANIFEST, read_manifest


def options(doc: str | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    parser.add_argument("--require", action="store_true", help="fail unless the build is usable")
    return parser.parse_args()


def up_to_date(directory: Path, wanted: dict[str, object], problem: Callable[[], str | None]) -> bool:
    """The build in `directory` was made for `wanted` and `problem()` finds nothing wrong with it."""
    return read_manifest(directory, "", "") == wanted and problem() is None


def swap_in(output: Path, directory: Path, wanted: dict[str, object]) -> None:
    """The finished build in `output`, with its manifest, replaces `directory` whole: a failed build
    never gets here, and leaves the old one, which its digest then marks stale."""
    (output / MANIFEST).write_text(json.dumps(wanted, indent=1) + "\n", encoding="utf-8")
    if directory.exists():
        shutil.rmtree(directory)
    output.rename(directory)
