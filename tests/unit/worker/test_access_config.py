"""The access file, the binding rule and notify's tokens (issue 29): one sentence for each
mistake, naming the file and field and never the token."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from agents.worker.access import binding_line, require_safe_binding
from config.access import load_access_file
from config.secret import Secret, forget_secrets
from config.settings import ConfigError, WebSettings, _apply_environment, settings_from_yaml
from streams.commands import notify as notify_command
from streams.notify.alertmanager import AlertmanagerIntake, require_notify_binding

TOKEN = "a-token-nobody-may-read-0123456789"
BAD_FILES = {
    "not YAML": (f"tokens: [{{token: {TOKEN}", "not valid YAML"),
    "no tokens": ("tokens: []\n", "tokens: expected a list"),
    "an unknown role": (f"tokens: [{{name: a, role: boss, shops: '*', token: {TOKEN}}}]", "tokens[0].role"),
    "no shops": (f"tokens: [{{name: a, role: floor, token: {TOKEN}}}]", "tokens[0].shops"),
    "a short token": ("tokens: [{name: a, role: floor, shops: '*', token: short-secret}]", "tokens[0].token"),
    "the example's token": (
        "tokens: [{name: a, role: admin, shops: '*', token: example-admin-change-me-0003}]",
        "tokens[0].token: an example token",
    ),
    "both token kinds": (
        f"tokens: [{{name: a, role: floor, shops: '*', token: {TOKEN}, token_env: X}}]",
        "tokens[0].token",
    ),
    "an unset variable": (
        "tokens: [{name: a, role: floor, shops: '*', token_env: KEFU_TEST_UNSET}]",
        "tokens[0].token_env: the environment variable KEFU_TEST_UNSET is not set",
    ),
    "a token twice": (
        f"tokens: [{{name: a, role: floor, shops: '*', token: {TOKEN}}}, "
        f"{{name: b, role: admin, shops: '*', token: {TOKEN}}}]",
        "tokens[1].token: the same token as tokens[0]",
    ),
    "an unknown field": (
        f"tokens: [{{name: a, role: floor, shops: '*', token: {TOKEN}, password: {TOKEN}}}]",
        "tokens[0].password: unknown field",
    ),
}


@pytest.mark.parametrize("text,names", list(BAD_FILES.values()), ids=list(BAD_FILES))
def test_a_bad_access_file_is_one_sentence_naming_path_and_field_never_the_token(
    text: str, names: str, tmp_path: Path
) -> None:
    path = tmp_path / "access.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        with pytest.raises(ConfigError) as caught:
            load_access_file(str(path), {})
    finally:
        forget_secrets()
    sentence = str(caught.value)
    assert str(path) in sentence and names in sentence, sentence
    assert TOKEN not in sentence and "short-secret" not in sentence and "\n" not in sentence
    assert caught.value.exit_code == 2


def test_tokens_from_the_file_and_the_environment_resolve_to_their_entries(tmp_path: Path) -> None:
    path = tmp_path / "access.yaml"
    other = "another-token-from-the-env-0123"
    path.write_text(
        f"tokens:\n  - {{name: a, role: floor, shops: [s1], token: {TOKEN}}}\n"
        "  - {name: b, role: manager, shops: '*', token_env: KEFU_TEST_B}\n",
        encoding="utf-8",
    )
    try:
        access = load_access_file(str(path), {"KEFU_TEST_B": other})
    finally:
        forget_secrets()
    first, second = access.entry_for(TOKEN), access.entry_for(other)
    assert first is not None and (first.name, first.role, first.shops) == ("a", "floor", frozenset({"s1"}))
    assert second is not None and (second.name, second.shops) == ("b", None)
    assert access.entry_for(TOKEN[:-1]) is None and access.entry_for(TOKEN + "x") is None


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "kefu.example.com"])
def test_a_reachable_address_without_an_access_file_is_refused(host: str) -> None:
    with pytest.raises(ConfigError) as caught:
        require_safe_binding(WebSettings(host=host))
    assert "web.host" in str(caught.value) and "access" in str(caught.value)
    assert caught.value.exit_code == 2
    require_safe_binding(WebSettings(host=host, access_file="/etc/kefu/access.yaml"))  # no error


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_a_loopback_address_without_tokens_starts_and_says_so(host: str) -> None:
    require_safe_binding(WebSettings(host=host))
    line = binding_line(WebSettings(host=host))
    assert line is not None and host in line and "\n" not in line
    assert binding_line(WebSettings(host=host, access_file="/x")) is None


def test_the_environment_gives_the_access_file_and_the_tokens() -> None:
    settings = settings_from_yaml("web: {access_file: /from/the/file.yaml}\n")
    environ = {
        "KEFU_ACCESS_FILE": "/from/env.yaml",
        "KEFU_METRICS_TOKEN": "m" * 20,
        "KEFU_NOTIFY_TOKEN": "n" * 20,
    }
    try:
        web = _apply_environment(settings, environ).web
    finally:
        forget_secrets()
    assert web.access_file == "/from/env.yaml"
    assert web.metrics_token == Secret("m" * 20) and web.notify_token == Secret("n" * 20)
    assert "m" * 20 not in repr(web)
    assert _apply_environment(settings, {}).web.access_file == "/from/the/file.yaml"
    with pytest.raises(ConfigError):
        settings_from_yaml("web: {metrics_token: in-the-file-0123456789}\n")  # never from the file


@pytest.mark.parametrize("name", ["KEFU_METRICS_TOKEN", "KEFU_NOTIFY_TOKEN"])
def test_an_example_metrics_or_notify_token_is_refused(name: str) -> None:
    """compose's and Kubernetes' examples ship them: anyone who read the repository has them."""
    with pytest.raises(ConfigError) as caught:
        _apply_environment(settings_from_yaml(""), {name: "example-metrics-change-me-0004"})
    assert name in str(caught.value) and "of your own" in str(caught.value)


@pytest.mark.parametrize("name", ["KEFU_METRICS_TOKEN", "KEFU_NOTIFY_TOKEN"])
def test_a_short_metrics_or_notify_token_is_refused_without_being_shown(name: str) -> None:
    """They guard /metrics and the alert intake on their own, as long as an access file's."""
    with pytest.raises(ConfigError) as caught:
        _apply_environment(settings_from_yaml(""), {name: "fifteen-chars-x"})
    assert name in str(caught.value) and "16" in str(caught.value)
    assert "fifteen-chars-x" not in str(caught.value)


def test_notify_without_its_token_binds_loopback_only() -> None:
    with pytest.raises(ConfigError) as caught:
        require_notify_binding(WebSettings(host="0.0.0.0"))
    assert "KEFU_NOTIFY_TOKEN" in str(caught.value)
    require_notify_binding(WebSettings(host="127.0.0.1"))
    require_notify_binding(WebSettings(host="0.0.0.0", notify_token=Secret("n" * 20)))


class _Sink:
    def __init__(self) -> None:
        self.accepted = 0

    async def accept_events(self, events: object) -> None:
        self.accepted += 1


PAYLOAD = b'{"version": "4", "alerts": []}'


def notify_statuses(web: WebSettings) -> tuple[dict[str, int], int]:
    async def run() -> tuple[dict[str, int], int]:
        intake, sink = AlertmanagerIntake(), _Sink()
        intake.attach(sink)
        runner = await notify_command.serve_metrics(CollectorRegistry(), "127.0.0.1", 0, intake, web)
        app = runner.app
        await runner.cleanup()
        async with TestClient(TestServer(app)) as client:
            bearer = {"Authorization": f"Bearer {TOKEN}"}
            metrics = {"Authorization": "Bearer metrics-token-0123456789"}
            got = {
                "post without token": (await client.post("/alertmanager", data=PAYLOAD)).status,
                "post with a wrong token": (
                    await client.post("/alertmanager", data=PAYLOAD, headers={"Authorization": "Bearer nope"})
                ).status,
                "post with its token": (
                    await client.post("/alertmanager", data=PAYLOAD, headers=bearer)
                ).status,
                "metrics without token": (await client.get("/metrics")).status,
                "metrics with the notify token": (await client.get("/metrics", headers=bearer)).status,
                "metrics with its token": (await client.get("/metrics", headers=metrics)).status,
                "healthz": (await client.get("/healthz")).status,
            }
            return got, sink.accepted

    return asyncio.run(run())


def test_notify_refuses_alertmanager_posts_without_its_token() -> None:
    web = WebSettings(
        host="0.0.0.0", notify_token=Secret(TOKEN), metrics_token=Secret("metrics-token-0123456789")
    )
    statuses, accepted = notify_statuses(web)
    assert statuses == {
        "post without token": 401,
        "post with a wrong token": 401,
        "post with its token": 200,
        "metrics without token": 401,
        "metrics with the notify token": 401,
        "metrics with its token": 200,
        "healthz": 200,
    }
    assert accepted == 1  # only the post with the token reached the dispatcher


def test_notify_on_loopback_without_tokens_stays_open() -> None:
    statuses, _ = notify_statuses(msgspec.structs.replace(WebSettings(), host="127.0.0.1"))
    assert statuses["post without token"] == 200 and statuses["metrics without token"] == 200
