"""How a command ends on a KefuError: one masked sentence, introduced as its command always has,
and the error's exit code; `demo` outside a checkout is one of them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from config.secret import REDACTED, forget_secrets, remember_secrets
from config.settings import ConfigError, Settings
from streams.commands import demo
from streams.commands.base import StoreUnavailable, explained
from streams.contract.report import ReportRequestError


def ended(error: Exception, refusal_prefix: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited, explained(refusal_prefix):
        raise error
    code = exited.value.code
    assert isinstance(code, int)
    return code, capsys.readouterr().err


def test_a_refusal_is_introduced_by_its_command_and_an_outage_the_same_everywhere(
    capsys: pytest.CaptureFixture[str],
) -> None:
    refused = ended(ReportRequestError("no such day"), "kefu-pulse: report: ", capsys)
    assert refused == (1, "kefu-pulse: report: no such day\n")
    outage = ended(StoreUnavailable("Redis is unreachable"), "kefu-pulse rebuild: ", capsys)
    assert outage == (1, "kefu-pulse: Redis is unreachable\n")
    assert ended(ConfigError("$.kafka: bad"), "✗ configuration: ", capsys) == (
        2,
        "✗ configuration: $.kafka: bad\n",
    )


def test_the_sentence_is_masked(capsys: pytest.CaptureFixture[str]) -> None:
    remember_secrets(["Qz7kV9wXp3Lm"])
    try:
        _, said = ended(StoreUnavailable("a proxy quoted Qz7kV9wXp3Lm"), "kefu-pulse: ", capsys)
    finally:
        forget_secrets()
    assert said == f"kefu-pulse: a proxy quoted {REDACTED}\n"


def test_demo_without_a_checkout_says_it_needs_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Installed from a wheel, there is no deploy/local/stack beside the package."""
    monkeypatch.setattr(demo, "STACK", tmp_path / "deploy" / "local" / "stack")
    with pytest.raises(SystemExit) as exited, explained():
        asyncio.run(demo.run_demo(Settings()))
    assert exited.value.code == 1
    said = capsys.readouterr().err
    assert said.startswith("kefu-pulse: demo needs a checkout of the repository: ")
    assert f"({tmp_path / 'deploy' / 'local' / 'stack'} is missing)" in said
    assert said.rstrip().endswith("run `.venv/bin/kefu-pulse demo` from the checkout")
    assert len(said.splitlines()) == 1


@pytest.mark.parametrize(
    ("arguments", "names"),
    [
        (["--rate", "0"], "'--rate'"),  # ZeroDivisionError
        (["--rate", "-5"], "'--rate'"),  # timestamps ran backwards, as fast as Kafka took them
        (["--shops", "0"], "'--shops'"),
        (["--agents", "0"], "'--agents'"),
        (["--history-days", "-1"], "'--history-days'"),
    ],
)
def test_simulate_refuses_nonsense_naming_the_option(arguments: list[str], names: str) -> None:
    """A usage error (exit 2) before anything connects, not a traceback."""
    import subprocess
    import sys

    kefu_pulse = str(Path(sys.executable).parent / "kefu-pulse")
    done = subprocess.run([kefu_pulse, "simulate", *arguments], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and f"Invalid value for {names}" in done.stderr, done.stderr
