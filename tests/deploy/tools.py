"""Shared helpers for the deploy tests: paths, YAML, and running the real Prometheus tools."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from agents.exposure.collector import FloorCollector
from agents.exposure.metrics import WorkerMetrics
from config.settings import WebSettings
from streams.notify.metrics import NotifyMetrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "rules.yml"
DEFAULT_WEB_PORT = WebSettings().port
# Series Prometheus makes itself rather than scraping them from the worker.
PROMETHEUS_SERIES = frozenset({"up"})


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_yaml_documents(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def run_tool(binary: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run a Debian-packaged tool; skip (not fail) only when it is not installed."""
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} is not installed (Debian packages prometheus / prometheus-alertmanager)")
    return subprocess.run([path, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def assert_succeeded(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, (
        f"{' '.join(result.args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    )


def settings_environment_variables() -> set[str]:
    """The KEFU_* variables config/settings.py reads: the only ones a deployment may set."""
    source = (ROOT / "config" / "settings.py").read_text(encoding="utf-8")
    return set(re.findall(r"""environ\.get\(\s*["'](KEFU_\w+)["']""", source))


_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "gauge": ("",),
}


def exported_series_names() -> set[str]:
    """Every series name the worker's and notify's /metrics can carry, from the code's own
    metric families."""
    registry = CollectorRegistry()
    WorkerMetrics.create(registry)
    NotifyMetrics.create(registry)
    registry.register(FloorCollector())  # yields every family even with an empty snapshot
    names: set[str] = set()
    for family in registry.collect():
        names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
    return names


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, describe: Callable[[], str]) -> None:
    """Poll `check`; on timeout fail with `describe()` evaluated then, not at the start."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s: {describe()}")
