"""No secret byte on any path that can print a Redis URL.

Each URL form redis-py reads (and a few it would refuse but a person may type) goes through
every such path: the health body, `check`'s lines, the CLI's start-up errors, the store's
problem sentences, configuration errors (start-up and reload), reload logs and log records.
Passwords hold `@`, `:`, `/` and `%40`-encoded characters; no five characters in a row of
any form of a password (as written, or decoded as redis-py sends it) may appear.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from agents.store.errors import bug_problem, describe_problem
from agents.worker import health as health_module
from agents.worker.health import Health
from config.redaction import install_log_redaction, settings_secrets
from config.secret import REDACTED, forget_secrets, mask_secrets
from config.settings import ConfigError, Settings, load_settings, settings_from_yaml
from config.watch import ConfigWatcher
from streams.commands import base
from streams.commands import main as cli
from streams.commands.check import Check, redis_check, report
from streams.wire.preflight import StartupError
from streams.wire.security import KafkaAccessError


@dataclass(frozen=True)
class Form:
    url: str
    secrets: tuple[str, ...]  # every form of the password that must never show


FORMS = [
    Form("redis://:Qz7@kV9w-Xp3Lm@redis.example:6379/0", ("Qz7@kV9w-Xp3Lm",)),
    Form("redis://kefu:Qz7:kV9w-Xp3Lm@redis.example:6379/0", ("Qz7:kV9w-Xp3Lm",)),
    Form(
        "redis://kefu:Qz7%40kV%3A9w%2FXp3Lm@redis.example:6379/0",
        ("Qz7%40kV%3A9w%2FXp3Lm", "Qz7@kV:9w/Xp3Lm"),
    ),
    Form("redis://kefu:Qz7/kV9w@Xp3Lm@redis.example:6379/0", ("Qz7/kV9w@Xp3Lm",)),
    Form("rediss://kefu:Qz7@kV:9w-Xp3Lm@redis.example:6380/0?ssl_cert_reqs=required", ("Qz7@kV:9w-Xp3Lm",)),
    Form("redis+cluster://kefu:Qz7@kV9w-Xp3Lm@node1:7000,node2:7001,node3:7002/0", ("Qz7@kV9w-Xp3Lm",)),
    Form("unix://kefu:Qz7@kV9w-Xp3Lm@/var/run/redis.sock?db=0", ("Qz7@kV9w-Xp3Lm",)),
    Form("unix:///var/run/redis.sock?db=0&password=Qz7@kV9w-Xp3Lm", ("Qz7@kV9w-Xp3Lm",)),
    Form("redis://redis.example:6379/0?password=Qz7%40kV9w-Xp3Lm", ("Qz7%40kV9w-Xp3Lm", "Qz7@kV9w-Xp3Lm")),
    Form("redis://redis.example/0?db=0&password=Qz7:kV/9w-Xp3Lm&ssl=false", ("Qz7:kV/9w-Xp3Lm",)),
]
WINDOW = 5


def leaks(text: str, form: Form) -> list[str]:
    return sorted(
        {s[i : i + WINDOW] for s in form.secrets for i in range(len(s) - WINDOW + 1)} & _windows(text)
    )


def _windows(text: str) -> set[str]:
    return {text[i : i + WINDOW] for i in range(len(text) - WINDOW + 1)}


def assert_masked(text: str, form: Form) -> None:
    assert not leaks(text, form), (leaks(text, form), text)
    assert REDACTED in text, text  # masked, not merely left out


@pytest.fixture(autouse=True)
def no_remembered_secrets() -> Iterator[None]:
    """Each path must mask on its own, not thanks to what another test taught the process."""
    forget_secrets()
    yield
    forget_secrets()


def settings_for(form: Form) -> Settings:
    return settings_from_yaml(f"redis: {{url: '{form.url}'}}\n")


def library_error(form: Form) -> RedisConnectionError:
    """A client library's error that quotes the URL it was given."""
    return RedisConnectionError(f"Error 111 connecting with {form.url}. Connection refused.")


forms = pytest.mark.parametrize(
    "form", FORMS, ids=[f.url.split(":", 1)[0] + str(i) for i, f in enumerate(FORMS)]
)


@forms
def test_the_one_masking_function(form: Form) -> None:
    assert_masked(mask_secrets(form.url), form)
    assert_masked(mask_secrets(f"at {form.url}, and in a repr: '{form.url}'"), form)


@forms
def test_store_problem_sentences(form: Form) -> None:
    assert_masked(describe_problem(library_error(form), form.url), form)
    assert_masked(describe_problem(TimeoutError(), form.url), form)
    assert_masked(bug_problem(f"ERR while talking to {form.url}", "apply_agent.lua"), form)


@dataclass
class FailingStore:
    error: BaseException

    async def ping(self) -> bool:
        raise self.error


@dataclass
class Runtime:
    store: FailingStore
    settings: Settings


@dataclass
class App:
    rebalancing: bool = False
    consumer_generation_id: int = 3


@forms
def test_the_health_body(form: Form, monkeypatch: pytest.MonkeyPatch) -> None:
    async def facts(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("Unable to bootstrap")

    async def access(*args: Any, **kwargs: Any) -> None:
        raise KafkaAccessError(f"cannot use Kafka: a proxy refused {form.url}")

    monkeypatch.setattr(health_module, "topic_facts", facts)
    monkeypatch.setattr(health_module, "check_access", access)
    runtime = Runtime(FailingStore(library_error(form)), settings_for(form))
    problems = asyncio.run(Health(runtime, App()).problems())  # type: ignore[arg-type]
    assert [p.split(":", 1)[0] for p in problems] == ["redis", "kafka"]
    body = json.dumps({"problems": problems})
    # Only "no leak": the body may show the URL masked, or leave the credentials out altogether.
    assert not leaks(body, form), body


@forms
def test_check_lines(form: Form, capsys: pytest.CaptureFixture[str]) -> None:
    info = {"redis_version": "7.4.0", "maxmemory_policy": "noeviction"}
    refused = StartupError(base.redis_problem(settings_for(form), library_error(form)))
    checks = [redis_check(form.url, info), Check("redis", False, str(refused)), Check("x", False, form.url)]
    for as_json in (False, True):
        report(checks, as_json)
        assert_masked(capsys.readouterr().out, form)


@forms
def test_cli_start_up_errors(form: Form, capsys: pytest.CaptureFixture[str]) -> None:
    problem = base.redis_problem(settings_for(form), library_error(form))
    assert_masked(problem, form)
    assert_masked(str(StartupError(f"Kafka said: {form.url}")), form)
    with pytest.raises(SystemExit):
        base.fail(f"kefu-pulse: check could not finish: RuntimeError: {form.url}", 1)
    assert_masked(capsys.readouterr().err, form)


def broken_yaml(form: Form, padded: bool) -> str:
    """A syntax error on the URL's line; padded, PyYAML's excerpt of it starts inside the URL."""
    filler = f"note: '{'x' * 70}', " if padded else ""
    return f"kafka: {{partitions: 8}}\nredis: {{{filler}url: '{form.url}'}}, web: {{port: 1}}\n"


@forms
@pytest.mark.parametrize("padded", [False, True])
def test_configuration_errors(form: Form, padded: bool) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_yaml(broken_yaml(form, padded), "kefu.yaml")
    assert "line 2" in str(caught.value)
    assert_masked(str(caught.value), form)


@forms
def test_start_up_prints_a_configuration_error_masked(
    form: Form, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "kefu.yaml"
    path.write_text(broken_yaml(form, padded=True))
    monkeypatch.setattr(sys, "argv", ["kefu-pulse", "worker"])
    monkeypatch.setenv("KEFU_CONFIG", str(path))
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 2
    assert_masked(capsys.readouterr().err, form)
    # The environment's own URL, named in an error about something else, is masked as well.
    bad_port = {"KEFU_CONFIG": str(path), "KEFU_REDIS_URL": form.url, "KEFU_WEB_PORT": form.url}
    path.write_text("{}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(bad_port)
    assert_masked(str(caught.value), form)


def _write(path: Path, text: str, stamp: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(stamp, stamp))


@forms
def test_reload_logs(form: Form, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "kefu.yaml"
    _write(path, "{}\n", 1_000_000_000)
    watcher = ConfigWatcher(settings_from_yaml("{}"), lambda settings: None, path, environ={})
    with caplog.at_level(logging.INFO, logger="config.watch"):
        _write(path, broken_yaml(form, padded=True), 2_000_000_000)
        watcher.poll()
        watcher.poll()
        _write(path, f"redis: {{url: '{form.url}'}}\n", 3_000_000_000)  # needs a restart
        watcher.poll()
        watcher.poll()
    said = "\n".join(r.getMessage() for r in caplog.records)
    assert "not valid YAML" in said and "redis.url" in said
    assert_masked(said, form)


@forms
def test_log_records(form: Form) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("kefu.test.secret_paths")
    logger.addHandler(handler)
    logger.propagate = False
    for known in (settings_secrets(settings_for(form)), []):  # what the CLI installs, or nothing
        undo = install_log_redaction(known)
        try:
            logger.error("connecting to %s", form.url)
            try:
                raise library_error(form)
            except RedisConnectionError:
                logger.exception("redis failed")
            logger.warning(ResponseError(f"NOAUTH at {form.url}"))
        finally:
            undo()
    logger.removeHandler(handler)
    assert_masked(stream.getvalue(), form)
