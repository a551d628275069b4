"""Access per shop and role (issue 29): every route × role × (own shop, another shop's id, no
token, wrong token) gets its status, and a refusal carries one sentence and no data."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest

from agents.worker.access import ROUTES, named_shops
from config.redaction import settings_secrets
from config.secret import REDACTED, Secret, forget_secrets, remember_secrets
from tests.unit.worker.web import FakeRuntime, ReadStore, served, settings

TOKENS = {
    "floor": "floor-token-s1-0123456789abcdef",
    "manager": "manager-token-s1-0123456789abcdef",
    "admin": "admin-token-s1-0123456789abcdef",
}
EVERY_SHOP_ADMIN = "admin-token-all-0123456789abcdef"
METRICS_TOKEN = "metrics-token-0123456789abcdef"
WRONG = "wrong-token-0123456789abcdef0000"
FLOOR_S1 = "/api/v1/floor?shop=s1"
RANK = {"floor": 0, "manager": 1, "admin": 2}
ACCESS_FILE = f"""tokens:
  - {{name: wall-s1, role: floor, shops: [s1], token: {TOKENS["floor"]}}}
  - {{name: lead-s1, role: manager, shops: [s1], token_env: KEFU_TEST_MANAGER_TOKEN}}
  - {{name: admin-s1, role: admin, shops: [s1], token: {TOKENS["admin"]}}}
  - {{name: ops, role: admin, shops: "*", token: {EVERY_SHOP_ADMIN}}}
"""


@dataclass(frozen=True)
class Route:
    path: str
    role: str  # the lowest role that may read it
    takes_shop: bool = True
    served_now: bool = True  # the details routes come from another module (details_views.py)


ROLE_ROUTES = [
    Route("/floor", "floor"),
    Route("/api/v1/floor", "floor"),
    Route("/api/v1/floor/stream", "floor"),
    Route("/api/v1/floor/trend", "floor"),
    Route("/report", "manager"),
    Route("/api/v1/report", "manager"),
    Route("/details", "manager", served_now=False),
    Route("/api/v1/details", "manager", served_now=False),
    Route("/api/v1/config", "admin", takes_shop=False),
]


def guarded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeRuntime:
    monkeypatch.setenv("KEFU_TEST_MANAGER_TOKEN", TOKENS["manager"])
    access = tmp_path / "access.yaml"
    access.write_text(ACCESS_FILE, encoding="utf-8")
    runtime = FakeRuntime(settings(access_file=str(access), host="0.0.0.0"), ReadStore())
    runtime.settings = msgspec.structs.replace(
        runtime.settings,
        web=msgspec.structs.replace(runtime.settings.web, metrics_token=Secret(METRICS_TOKEN)),
    )
    return runtime


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    headers: dict[str, str]


async def ask(client: Any, path: str, token: str | None, in_query: bool = False) -> Answer:
    headers = {"Authorization": f"Bearer {token}"} if token and not in_query else {}
    if token and in_query:
        path += ("&" if "?" in path else "?") + f"token={token}"
    async with client.get(path, headers=headers) as response:
        status, got = response.status, dict(response.headers)
        if "event-stream" in response.headers.get("Content-Type", ""):
            return Answer(status, "", got)  # a live stream never ends by itself
        return Answer(status, await response.text(), got)


def assert_no_data(answer: Answer) -> None:
    """A refusal: one sentence, nothing read, no shop's or agent's id."""
    body = answer.body
    sentence = json.loads(body)["error"] if body.startswith("{") else body.split("<p>", 1)[1].split("</p>")[0]
    assert isinstance(sentence, str) and "\n" not in sentence and len(sentence) < 200
    for data in ("s1", "s2", "小美", "agents", "kefu_", *TOKENS.values(), EVERY_SHOP_ADMIN):
        assert data not in body, body
    if answer.status == 401:
        assert answer.headers.get("WWW-Authenticate", "").startswith("Bearer"), answer.headers


def expected(route: Route, role: str | None, shop: str) -> int:
    if role is None:
        return 401
    if RANK[role] < RANK[route.role] or (route.takes_shop and shop != "s1"):
        return 403
    return 200


@pytest.mark.parametrize("route", ROLE_ROUTES, ids=[r.path for r in ROLE_ROUTES])
def test_every_route_by_role_shop_and_token(
    route: Route, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = guarded(tmp_path, monkeypatch)
    cases: list[tuple[str, str | None, str, bool]] = [
        (role, TOKENS[role], shop, in_query)
        for role in TOKENS
        for shop in ("s1", "s2")
        for in_query in (False, True)
    ]
    cases += [("none", None, "s1", False), ("wrong", WRONG, "s1", False), ("wrong", WRONG, "s1", True)]

    async def run() -> list[str]:
        wrong = []
        async with served(runtime) as client:
            for who, token, shop, in_query in cases:
                path = f"{route.path}?shop={shop}" if route.takes_shop else route.path
                answer = await ask(client, path, token, in_query)
                want = expected(route, who if who in TOKENS else None, shop)
                allowed = answer.status not in (401, 403)
                if want == 200 and not (answer.status == 200 if route.served_now else allowed):
                    wrong.append(f"{who} {path} query={in_query}: {answer.status} {answer.body[:80]}")
                elif want != 200:
                    if answer.status != want:
                        wrong.append(f"{who} {path} query={in_query}: {answer.status}, expected {want}")
                    else:
                        assert_no_data(answer)
        return wrong

    assert asyncio.run(run()) == []
    assert runtime.store.reads == 0 or any(expected(route, r, "s1") == 200 for r in TOKENS)


def test_a_refused_request_reads_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = guarded(tmp_path, monkeypatch)

    async def run() -> None:
        async with served(runtime) as client:
            for path in ("/api/v1/floor?shop=s2", "/api/v1/report?shop=s1", "/api/v1/floor/trend?shop=s1"):
                assert (await ask(client, path, TOKENS["floor"] if "s2" in path else None)).status in (
                    401,
                    403,
                )
            answer = await ask(client, "/api/v1/report?shop=s1", TOKENS["floor"])
            assert answer.status == 403

    asyncio.run(run())
    assert runtime.store.reads == 0


def test_the_every_shop_admin_reads_any_shop_and_the_config_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = guarded(tmp_path, monkeypatch)

    async def run() -> tuple[Answer, Answer, Answer]:
        async with served(runtime) as client:
            return (
                await ask(client, "/api/v1/floor?shop=s2", EVERY_SHOP_ADMIN),
                await ask(client, "/api/v1/config", EVERY_SHOP_ADMIN),
                await ask(client, "/api/v1/config", TOKENS["admin"]),
            )

    floor, config, shop_admin_config = asyncio.run(run())
    assert floor.status == 200 and json.loads(floor.body)["shop"] == "s2"
    assert config.status == 200 and set(json.loads(config.body)["shops"]) == {"s1", "s2"}
    assert json.loads(config.body)["web"]["metrics_token"] == "********"
    assert METRICS_TOKEN not in config.body
    assert set(json.loads(shop_admin_config.body)["shops"]) == {"s1"}  # no other shop's settings


def test_the_config_shows_the_shops_as_last_reloaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reload applies `defaults` and `shops` live (config/watch.py): the effective settings are
    those, not the start-up ones."""
    runtime = guarded(tmp_path, monkeypatch)
    reloaded = msgspec.structs.replace(
        runtime.settings,
        shops={
            **runtime.settings.shops,
            "s2": msgspec.structs.replace(runtime.settings.shops["s2"], alert_threshold_seconds=99),
        },
    )
    runtime.policies.update(reloaded)

    async def run() -> Answer:
        async with served(runtime) as client:
            return await ask(client, "/api/v1/config", EVERY_SHOP_ADMIN)

    config = asyncio.run(run())
    assert config.status == 200
    assert json.loads(config.body)["shops"]["s2"]["alert_threshold_seconds"] == 99


@pytest.mark.parametrize("password", ['Qz7"kV9w-Xp3Lm', "Qz7\\kV9w-Xp3Lm", 'Qz7"kV9w\\Xp3Lm店'])
def test_the_config_masks_a_password_its_json_escapes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, password: str
) -> None:
    """The body is JSON: a `"` or `\\` in the password is escaped there, and the escaped text
    was not the remembered password (nor a URL the patterns see whole: `"` ends one)."""
    runtime = guarded(tmp_path, monkeypatch)
    url = f"redis://:{password}@10.0.0.1:6379/0"
    runtime.settings = msgspec.structs.replace(
        runtime.settings, redis=msgspec.structs.replace(runtime.settings.redis, url=url)
    )
    remember_secrets(settings_secrets(runtime.settings))  # as streams/commands/main.py does at start

    async def run() -> Answer:
        async with served(runtime) as client:
            return await ask(client, "/api/v1/config", EVERY_SHOP_ADMIN)

    try:
        config = asyncio.run(run())
    finally:
        forget_secrets()
    assert config.status == 200
    assert "kV9w" not in config.body and "Xp3L" not in config.body, config.body
    assert REDACTED in json.loads(config.body)["redis"]["url"]


def test_metrics_takes_its_own_token_and_healthz_stays_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = guarded(tmp_path, monkeypatch)

    async def run() -> dict[str, int]:
        async with served(runtime) as client:
            return {
                "metrics token": (await ask(client, "/metrics", METRICS_TOKEN)).status,
                "metrics token in the query": (await ask(client, "/metrics", METRICS_TOKEN, True)).status,
                "no token": (await ask(client, "/metrics", None)).status,
                "admin token": (await ask(client, "/metrics", EVERY_SHOP_ADMIN)).status,
                # Open: its own verdict (503 here, with no Kafka), never a refusal.
                "healthz": int("status" in (await ask(client, "/healthz", None)).body),
                "metrics token on the floor": (
                    await ask(client, "/api/v1/floor?shop=s1", METRICS_TOKEN)
                ).status,
            }

    assert asyncio.run(run()) == {
        "metrics token": 200,
        "metrics token in the query": 401,  # Prometheus sends a header; a URL would be logged
        "no token": 401,
        "admin token": 401,
        "healthz": 1,
        "metrics token on the floor": 401,
    }


def test_a_floor_page_naming_another_shop_among_several_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = guarded(tmp_path, monkeypatch)

    async def run() -> list[int]:
        async with served(runtime) as client:
            paths = ["/floor?shops=s1,s2", "/floor?shop=s1,s2", "/floor?shops=s1", "/floor?shop=s1&shops=s2"]
            return [(await ask(client, p, TOKENS["floor"], True)).status for p in paths]

    assert asyncio.run(run()) == [403, 403, 200, 403]


def test_a_route_without_an_entry_in_the_table_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = guarded(tmp_path, monkeypatch)

    async def run() -> tuple[int, int]:
        async with served(runtime) as client:
            app = client.app
            app.router._frozen = False  # a view someone adds later, without a table entry
            app.router.add_get("/api/v1/secret-numbers", lambda request: None)
            app.router._frozen = True
            return (
                (await ask(client, "/api/v1/secret-numbers", EVERY_SHOP_ADMIN)).status,
                (await ask(client, "/nowhere", EVERY_SHOP_ADMIN)).status,
            )

    assert "/api/v1/secret-numbers" not in ROUTES
    assert asyncio.run(run()) == (403, 404)


def test_without_an_access_file_everything_is_local_and_open(monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = FakeRuntime(settings(), ReadStore())

    async def run() -> list[int]:
        async with served(runtime) as client:
            paths = [
                "/metrics",
                "/api/v1/floor?shop=s1",
                "/floor?shop=s2",
                "/api/v1/report?shop=s1",
                "/api/v1/config",
            ]
            return [(await ask(client, p, None)).status for p in paths]

    assert asyncio.run(run()) == [200, 200, 200, 200, 200]


@pytest.mark.parametrize("path", ["/api/v1/config", "/api/v1/floor?shop=s1", "/floor?shop=s1", "/metrics"])
def test_without_an_access_file_a_page_under_another_host_name_is_refused(path: str) -> None:
    """Local trusted whoever reached 127.0.0.1, and a web page the operator opened reaches it too
    once its own name resolves there (DNS rebinding): it read the config and the buyer lists
    with admin rights. It names its own host, so that is refused; loopback names are served."""
    runtime = FakeRuntime(settings(), ReadStore())

    async def run() -> tuple[list[int], Answer]:
        async with served(runtime) as client:
            port = client.server.port
            statuses = []
            for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
                async with client.get(path, headers={"Host": host}) as response:
                    statuses.append(response.status)
            async with client.get(path, headers={"Host": f"rebind.evil.example:{port}"}) as response:
                foreign = Answer(response.status, await response.text(), dict(response.headers))
            for host in ("x:y:z", "127.0.0.1:99999"):  # no browser sends these; no 500 either
                async with client.get(path, headers={"Host": host}) as response:
                    statuses.append(response.status)
            return statuses, foreign

    statuses, foreign = asyncio.run(run())
    assert statuses == [200, 200, 200, 403, 403] and foreign.status == 403
    assert_no_data(foreign)


def test_no_answer_may_be_stored_by_a_shared_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kiosk link's `?token=` has no Authorization header to keep a proxy from storing the
    floor it read, and serving it to the next one who asks without a token."""
    runtime = guarded(tmp_path, monkeypatch)

    async def run() -> dict[str, str]:
        async with served(runtime) as client:
            paths = [
                "/api/v1/floor?shop=s1",
                "/api/v1/floor/stream?shop=s1",
                "/floor?shop=s1",
                "/api/v1/report?shop=s1",
                "/api/v1/config",
            ]
            answers = {p: await ask(client, p, TOKENS["admin"], in_query=True) for p in paths}
            return {p: a.headers.get("Cache-Control", "") for p, a in answers.items() if a.status == 200}

    caching = asyncio.run(run())
    assert len(caching) == 5 and set(caching.values()) == {"no-store"}, caching


def test_no_token_reaches_a_log_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from config.redaction import install_log_redaction

    runtime = guarded(tmp_path, monkeypatch)
    undo = install_log_redaction([])
    caplog.set_level(logging.DEBUG)
    try:

        async def run() -> None:
            async with served(runtime) as client:
                for token in [*TOKENS.values(), WRONG, METRICS_TOKEN]:
                    for in_query in (False, True):
                        path = f"/api/v1/floor?shop=s1&token={token}" if in_query else "/api/v1/floor?shop=s1"
                        await ask(client, path, None if in_query else token)
                        logging.getLogger("aiohttp.access").info("GET %s", path)  # as an access log would

        asyncio.run(run())
    finally:
        undo()
        forget_secrets()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "GET /api/v1/floor" in logged
    for token in [*TOKENS.values(), WRONG, METRICS_TOKEN]:
        assert token not in logged


def test_named_shops_reads_every_form_the_views_and_page_read() -> None:
    from aiohttp.test_utils import make_mocked_request

    request = make_mocked_request("GET", "/floor?shop=a,%20b&shops=c&shop=d")
    assert named_shops(request) == {"a", "b", "c", "d", "a, b"}
