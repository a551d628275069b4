"""The benchmarks' own local stack (prefix `bench`), apart from the tests' and the demo's."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def stack_env(prefix: str = "bench") -> dict[str, str]:
    """Start what is missing of the stack `prefix`; its `export NAME=value` lines as a dict."""
    out = subprocess.run(
        [str(ROOT / "deploy/local/stack"), "up", "--prefix", prefix],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(
        line.removeprefix("export ").split("=", 1) for line in out.splitlines() if line.startswith("export ")
    )


def bench_stack_env() -> dict[str, str]:
    return stack_env("bench")
