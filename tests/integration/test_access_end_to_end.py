"""Access per shop and role (issue 29) as a user meets it: real `kefu-pulse worker` and `notify`
processes on the real stack, a real access file, headless Chromium on the kiosk link.

- Binding: 0.0.0.0 without an access file is refused in one sentence (exit 2); a loopback
  worker without one starts and says so in one line.
- One worker with an access file (started once for the module, it is slow): every route × each
  role's token × own shop / another shop's id / no token / an unknown token, /metrics with and
  without its token, /healthz open; afterwards its whole log holds none of the tokens.
- The wall screen's kiosk link `/floor?shop=s1&token=<floor token>` in Chromium: the page's
  stream and trend calls carry the token and are answered 200; without a token the page is 401.
- notify: POST /alertmanager and /metrics behind their Bearer tokens.

Redis dbs: the guarded worker's deployment pins db 9 (for this module only; test_batch_path.py
and test_faults.py flush it before their own use); the others take the `deployment` fixture's.
"""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.integration.browser import chromium_page
from tests.integration.harness import (
    KEFU,
    ROOT,
    Deployment,
    Stack,
    chat_message,
    free_port,
    http_status,
    wait_for,
)

GUARDED_DB = 9


def _token(label: str) -> str:
    return f"{label}-{secrets.token_hex(16)}"  # fresh each run: a grep can only find this run's


TOKENS = {"floor": _token("floor-s1"), "manager": _token("manager-s1"), "admin": _token("admin-s1")}
EVERY_SHOP_ADMIN = _token("ops-all")
METRICS_TOKEN = _token("metrics")
NOTIFY_TOKEN = _token("notify")
UNKNOWN_TOKEN = _token("unknown")
EVERY_TOKEN = (*TOKENS.values(), EVERY_SHOP_ADMIN, METRICS_TOKEN, NOTIFY_TOKEN, UNKNOWN_TOKEN)
RANK = {"floor": 0, "manager": 1, "admin": 2}

SHOPS_YAML = """shops:
  s1:
    name: 旗舰店
    agents:
      's1:a': {name: 小美}
  s2:
    name: 二店
    agents:
      's2:b': {name: 阿强}
"""
# What a refusal must never show: the other shop's or any agent's data, or a token.
DATA = ("小美", "阿强", "s1:a", "s2:b", "tb_", "kefu_", *EVERY_TOKEN)


@dataclass(frozen=True)
class Route:
    path: str
    role: str  # the lowest role that may read it
    takes_shop: bool = True
    # The lists' views (agents/worker/details_views.py) come from another change: until the
    # worker installs them an allowed request is a 404, so "allowed" there means "not refused".
    served_now: bool = True


ROUTES = [
    Route("/floor", "floor"),
    Route("/api/v1/floor", "floor"),
    Route("/api/v1/floor/stream", "floor"),
    Route("/api/v1/floor/trend", "floor"),
    Route("/report", "manager"),
    Route("/api/v1/report", "manager"),
    Route("/details", "manager", served_now=False),
    Route("/api/v1/details", "manager", served_now=False),
    Route("/api/v1/details.csv", "manager", served_now=False),
    Route("/api/v1/config", "admin", takes_shop=False),
]


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    authenticate: str  # WWW-Authenticate


def ask(port: int, path: str, token: str | None = None, *, in_query: bool = False) -> Answer:
    """GET `path` with `token` as a Bearer header, or as `?token=` (the kiosk link's form)."""
    if token is not None and in_query:
        path += ("&" if "?" in path else "?") + f"token={token}"
    headers = {"Authorization": f"Bearer {token}"} if token is not None and not in_query else {}
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            if "event-stream" in response.headers.get("Content-Type", ""):
                return Answer(response.status, "", "")  # a live stream never ends by itself
            return Answer(response.status, response.read().decode(), "")
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.read().decode(), error.headers.get("WWW-Authenticate", ""))


def refusal_problems(what: str, answer: Answer, want: int) -> list[str]:
    """What is wrong with `answer` as the refusal `want`: its status, more than one sentence,
    any data, and for a 401 the Bearer challenge."""
    if answer.status != want:
        return [f"{what}: {answer.status}, expected {want}: {answer.body[:120]}"]
    problems = []
    if len(answer.body) > 300 or answer.body.count("\n") > 1:
        problems.append(f"{what}: a refusal of {len(answer.body)} characters: {answer.body[:120]}")
    problems += [f"{what}: the refusal shows {data!r}" for data in DATA if data in answer.body]
    if want == 401 and not answer.authenticate.startswith("Bearer"):
        problems.append(f"{what}: a 401 without WWW-Authenticate: Bearer")
    return problems


def expected(route: Route, role: str | None, shop: str) -> int:
    if role is None:
        return 401
    if RANK[role] < RANK[route.role]:
        return 403
    return 403 if route.takes_shop and shop != "s1" else 200


def path_of(route: Route, shop: str) -> str:
    return f"{route.path}?shop={shop}" if route.takes_shop else route.path


def worker_log(deployment: Deployment) -> str:
    logs = sorted(deployment.tmp.glob(f"worker-{deployment.name}-*.log"))
    assert logs, "the worker wrote no log"
    return "\n".join(log.read_text(errors="replace") for log in logs)


def tokens_in(text: str) -> list[str]:
    return [token.split("-")[0] for token in EVERY_TOKEN if token in text]


# ---- Binding ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "options"),
    [("web: {host: 0.0.0.0}\n", []), ("", ["-b", "0.0.0.0"]), ("", ["--web-bind=0.0.0.0"])],
    ids=["web.host", "-b", "--web-bind"],
)
def test_a_reachable_address_without_an_access_file_is_refused_in_one_sentence(
    deployment: Deployment, config: str, options: list[str]
) -> None:
    """Faust's own bind option too: it would override web.host when the server starts."""
    deployment.config.write_text(deployment.config.read_text() + config)
    env = deployment.env(KEFU_WEB_PORT=str(free_port()))
    env.pop("KEFU_ACCESS_FILE", None)
    result = subprocess.run(
        [str(KEFU), "worker", "-l", "info", *options],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,  # a worker that starts instead runs until this
        cwd=deployment.tmp,
    )
    said = result.stderr.strip()
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr and "\n" not in said, result.stderr
    assert "web.host" in said and "0.0.0.0" in said and "access_file" in said and "127.0.0.1" in said, said


def test_a_loopback_worker_without_an_access_file_says_so_once(deployment: Deployment) -> None:
    deployment.create_topics()
    _, port = deployment.start_worker()
    wait_for(lambda: "no access file" in worker_log(deployment), timeout=30, what="the binding line")
    assert ask(port, "/api/v1/floor?shop=s1").status == 200  # local and open, as before tokens
    deployment.stop_workers()
    lines = [line for line in worker_log(deployment).splitlines() if "no access file" in line]
    assert len(lines) == 1, lines
    assert "127.0.0.1" in lines[0] and "web.access_file" in lines[0], lines[0]


# ---- One worker with an access file ------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, int]]:
    """A worker on 0.0.0.0 with an access file: shop s1's three roles and an every-shop admin;
    the manager's token from the environment (`token_env`), as a Secret would give it."""
    tmp = tmp_path_factory.mktemp("access")
    access = tmp / "access.yaml"
    access.write_text(
        "tokens:\n"
        f"  - {{name: wall-s1, role: floor, shops: [s1], token: {TOKENS['floor']}}}\n"
        "  - {name: lead-s1, role: manager, shops: [s1], token_env: KEFU_TEST_MANAGER_TOKEN}\n"
        f"  - {{name: admin-s1, role: admin, shops: [s1], token: {TOKENS['admin']}}}\n"
        f'  - {{name: ops, role: admin, shops: "*", token: {EVERY_SHOP_ADMIN}}}\n',
        encoding="utf-8",
    )
    web = f"web:\n  host: 0.0.0.0\n  access_file: {access}\n"
    deployment = Deployment(stack, tmp, shops_yaml=SHOPS_YAML + web, redis_db=GUARDED_DB)
    # Only the worker reads the access file: `topics create` runs without the manager's variable
    # (its `token_env` would be a start-up error), the worker with it, as in its container.
    environment = pytest.MonkeyPatch()
    environment.setenv("KEFU_METRICS_TOKEN", METRICS_TOKEN)
    try:
        deployment.create_topics()
        environment.setenv("KEFU_TEST_MANAGER_TOKEN", TOKENS["manager"])
        _, port = deployment.start_worker()
        now = time.time_ns() // 1_000_000
        deployment.wait_applied(
            deployment.produce(
                [
                    chat_message("g1", "tb_9f2", "buyer", now - 60_000, agent="s1:a", shop="s1"),
                    chat_message("g2", "tb_9f2", "agent", now - 55_000, agent="s1:a", shop="s1"),
                    chat_message("g3", "tb_7c1", "buyer", now - 30_000, agent="s2:b", shop="s2"),
                ]
            )
        )
        yield deployment, port
    finally:
        deployment.close()
        environment.undo()


def test_every_route_by_role_shop_and_token_on_a_real_worker(guarded: tuple[Deployment, int]) -> None:
    _, port = guarded
    wrong: list[str] = []
    for route in ROUTES:
        for role, token in TOKENS.items():
            for shop in ("s1", "s2"):
                what = f"{role} {path_of(route, shop)}"
                answer = ask(port, path_of(route, shop), token)
                want = expected(route, role, shop)
                if want != 200:
                    wrong += refusal_problems(what, answer, want)
                elif answer.status != 200 and (route.served_now or answer.status in (401, 403)):
                    wrong.append(f"{what}: {answer.status}, expected it served: {answer.body[:120]}")
        strangers: tuple[tuple[str, str | None], ...] = (
            ("no token", None),
            ("an unknown token", UNKNOWN_TOKEN),
        )
        for who, stranger in strangers:
            for in_query in (False, True):
                what = f"{who}{' in the query' if in_query else ''} {path_of(route, 's1')}"
                wrong += refusal_problems(
                    what, ask(port, path_of(route, "s1"), stranger, in_query=in_query), 401
                )
    assert wrong == []


def test_what_the_allowed_requests_read(guarded: tuple[Deployment, int]) -> None:
    """Allowed is real data: the floor of its own shop, every shop for the every-shop admin, and
    the configuration with its secrets masked and only the shops the admin may see."""
    _, port = guarded
    floor = ask(port, "/api/v1/floor?shop=s1", TOKENS["floor"], in_query=True)
    assert floor.status == 200 and json.loads(floor.body)["shop"] == "s1" and "s1:a" in floor.body
    other = ask(port, "/api/v1/floor?shop=s2", EVERY_SHOP_ADMIN)
    assert other.status == 200 and "s2:b" in other.body
    assert ask(port, "/api/v1/floor?shop=s1,s2", TOKENS["floor"]).status == 403
    assert ask(port, "/floor?shops=s1,s2", TOKENS["floor"], in_query=True).status == 403

    shop_admin = json.loads(ask(port, "/api/v1/config", TOKENS["admin"]).body)
    ops = ask(port, "/api/v1/config", EVERY_SHOP_ADMIN)
    assert set(shop_admin["shops"]) == {"s1"} and set(json.loads(ops.body)["shops"]) == {"s1", "s2"}
    assert json.loads(ops.body)["web"]["metrics_token"] == "********"
    assert tokens_in(ops.body) == []

    report = ask(port, "/api/v1/report?shop=s1", TOKENS["manager"])
    assert report.status == 200 and json.loads(report.body)["shop"] == "s1", report.body[:200]


def test_metrics_takes_only_its_own_token_and_healthz_stays_open(guarded: tuple[Deployment, int]) -> None:
    _, port = guarded
    scraped = ask(port, "/metrics", METRICS_TOKEN)
    assert scraped.status == 200 and "kefu_" in scraped.body
    refused = {
        "no token": ask(port, "/metrics"),
        "the metrics token in the query": ask(port, "/metrics", METRICS_TOKEN, in_query=True),
        "the every-shop admin's token": ask(port, "/metrics", EVERY_SHOP_ADMIN),
        "an unknown token": ask(port, "/metrics", UNKNOWN_TOKEN),
    }
    assert [p for what, answer in refused.items() for p in refusal_problems(what, answer, 401)] == []
    assert (
        refusal_problems(
            "the metrics token on the floor", ask(port, "/api/v1/floor?shop=s1", METRICS_TOKEN), 401
        )
        == []
    )
    health = ask(port, "/healthz")
    assert health.status == 200 and json.loads(health.body) == {"status": "ok"}


@pytest.mark.browser
def test_the_kiosk_link_carries_its_floor_token_in_chromium(guarded: tuple[Deployment, int]) -> None:
    from playwright.sync_api import Page, Response, expect

    deployment, port = guarded
    answered: list[tuple[str, int]] = []
    with chromium_page(1920, 1080) as opened:
        page = opened
        assert isinstance(page, Page)

        def record(response: Response) -> None:
            answered.append((response.url, response.status))

        page.on("response", record)
        kiosk = page.goto(f"http://127.0.0.1:{port}/floor?shop=s1&token={TOKENS['floor']}")
        assert kiosk is not None and kiosk.status == 200
        expect(page.locator('[data-agent="s1:a"]')).to_contain_text("小美", timeout=20_000)
        expect(page.locator("#status")).to_have_class("live", timeout=20_000)

        def called(path: str) -> list[tuple[str, int]]:
            return [(url, status) for url, status in answered if f"{path}?" in url]

        calls = ("/api/v1/floor/stream", "/api/v1/floor/trend")

        def both_called() -> bool:
            page.wait_for_timeout(200)  # Playwright delivers the page's events while it waits
            return all(called(path) for path in calls)

        wait_for(both_called, timeout=30, what="the page's stream and trend calls")
        for path in calls:
            assert all(f"token={TOKENS['floor']}" in url and status == 200 for url, status in called(path)), (
                called(path)
            )

        bare = page.goto(f"http://127.0.0.1:{port}/floor?shop=s1")
        assert bare is not None and bare.status == 401
        assert "token" in page.inner_text("body")
        elsewhere = page.goto(f"http://127.0.0.1:{port}/floor?shop=s2&token={TOKENS['floor']}")
        assert elsewhere is not None and elsewhere.status == 403
        assert "阿强" not in page.content()
    assert tokens_in(worker_log(deployment)) == []


def test_no_token_reaches_the_worker_log(guarded: tuple[Deployment, int]) -> None:
    """Runs after the requests above: every token was sent, as a header and in a URL."""
    deployment, port = guarded
    for token in EVERY_TOKEN:
        ask(port, f"/api/v1/floor?shop=s1&token={token}")
        ask(port, "/api/v1/floor?shop=s1", token)
    log = worker_log(deployment)
    assert "Worker ready" in log or "ready" in log.lower(), log[-2000:]
    assert tokens_in(log) == []


# ---- notify ------------------------------------------------------------------------------------


def alertmanager_body() -> bytes:
    """Alertmanager's webhook body for one firing rule alert of shop s1's agent a."""
    alert = {
        "status": "firing",
        "labels": {"alertname": "FirstResponseSlow", "shop": "s1", "agent": "s1:a", "severity": "warning"},
        "annotations": {"summary": "首次响应过慢 First response slow"},
        "startsAt": "2030-01-01T00:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": "access2e2e",
    }
    body = {"version": "4", "receiver": "kefu-floor", "status": "firing", "alerts": [alert]}
    return json.dumps(
        body | {"groupLabels": {}, "commonLabels": {}, "externalURL": "http://am:9093"}
    ).encode()


def post(port: int, token: str | None) -> int:
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/alertmanager", data=alertmanager_body(), headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_notify_takes_alertmanagers_post_and_prometheus_scrape_with_their_tokens(
    deployment: Deployment,
) -> None:
    deployment.create_topics()
    port = free_port()
    log = deployment.tmp / "notify.log"
    proc = subprocess.Popen(
        [str(KEFU), "notify", "--port", str(port)],
        env=deployment.env(
            KEFU_NOTIFY_TOKEN=NOTIFY_TOKEN, KEFU_METRICS_TOKEN=METRICS_TOKEN, PYTHONPATH=str(ROOT)
        ),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=deployment.tmp,
        start_new_session=True,
    )
    try:
        wait_for(lambda: http_status(port, "/healthz") == 200, timeout=60, what="notify /healthz")
        # 503 while notify is still starting; the token is checked before that.
        wait_for(lambda: post(port, NOTIFY_TOKEN) == 200, timeout=60, what="notify to accept a post")
        assert post(port, None) == 401
        assert post(port, UNKNOWN_TOKEN) == 401
        assert post(port, METRICS_TOKEN) == 401  # each token opens its own door only
        assert ask(port, "/metrics").status == 401
        assert ask(port, "/metrics", NOTIFY_TOKEN).status == 401
        scraped = ask(port, "/metrics", METRICS_TOKEN)
        assert scraped.status == 200 and "kefu_notifications_total" in scraped.body
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert tokens_in(log.read_text(errors="replace")) == []
