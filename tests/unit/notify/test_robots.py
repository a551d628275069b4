"""Each robot's contract over real HTTP on loopback (tests/robots.py plays the robots)."""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
import socket
import time
from collections.abc import Iterator

import aiohttp
import pytest

from config.secret import Secret
from config.settings import ChannelConfig
from streams.contract.alerts import AlertEvent
from streams.notify.robots import MAX_ANSWER_BYTES, Delivery, channel_secrets, classify, deliver, fits
from streams.render.notices import Names, Notice, firing_notice, floor_link, summary_notice
from tests.robots import ROBOTS, Robot, RobotServer

from .conftest import SECRETS

EVENT = AlertEvent(
    alert="BuyerWaitingTooLong",
    state="firing",
    shop_id="flagship",
    agent_id="flagship:xiaomei",
    value=22.6,
    threshold=15.0,
    ts=1_764_900_000_000,
    alert_id="BuyerWaitingTooLong/flagship/flagship:xiaomei/1764900000000",
)
NOTICE = firing_notice(
    EVENT, Names("旗舰店", "小美", "13800000000"), floor_link("http://wall.example:6066", "flagship")
)


def channel(
    robots: RobotServer, robot: Robot, secret: str | None = "right", url: str | None = None
) -> ChannelConfig:
    value = SECRETS.get(robot) if secret == "right" else secret
    return ChannelConfig(
        type=robot,
        name=robot,
        url=Secret(url or robots.url(robot)),
        secret=Secret(value) if value else None,
    )


def send(target: ChannelConfig, timeout_seconds: float = 5.0, notice: Notice = NOTICE) -> Delivery:
    async def go() -> Delivery:
        async with aiohttp.ClientSession() as session:
            return await deliver(session, target, notice, int(time.time() * 1000), timeout_seconds)

    return asyncio.run(go())


def assert_nothing_secret(delivery: Delivery, target: ChannelConfig, log: str = "") -> None:
    for secret in channel_secrets(target):
        assert secret not in delivery.detail
        assert secret not in log


@pytest.mark.parametrize("robot", ROBOTS)
def test_a_correctly_signed_message_is_accepted_with_its_text_and_mentions(
    robots: RobotServer, robot: Robot
) -> None:
    target = channel(robots, robot, secret=None if robot == "wecom" else "right")
    delivery = send(target)
    assert delivery.outcome == "sent", delivery
    [received] = robots.messages(robot)
    assert "旗舰店 · 小美：买家已等待 23 秒（阈值 15 秒）" in received.text
    assert received.mentions == ("13800000000",)
    assert "http://wall.example:6066/floor?shop=flagship" in received.text
    assert_nothing_secret(delivery, target)


@pytest.mark.parametrize("robot", ["dingtalk", "feishu", "webhook"])
def test_a_wrong_signature_is_refused_with_the_robots_own_answer(robots: RobotServer, robot: Robot) -> None:
    target = channel(robots, robot, secret="not-the-secret-at-all")
    delivery = send(target)
    assert delivery.outcome == "refused", delivery
    assert {"dingtalk": "310000", "feishu": "19021", "webhook": "401"}[robot] in delivery.detail
    assert robots.messages() == []
    assert_nothing_secret(delivery, target)


@pytest.mark.parametrize("robot", ["dingtalk", "feishu", "webhook"])
def test_a_missing_signature_is_refused_when_the_robot_has_a_secret(
    robots: RobotServer, robot: Robot
) -> None:
    assert send(channel(robots, robot, secret=None)).outcome == "refused"
    assert robots.messages() == []


@pytest.mark.parametrize("robot", ROBOTS)
def test_a_wrong_token_is_refused(robots: RobotServer, robot: Robot) -> None:
    target = channel(robots, robot, url=robots.url(robot, token="wrong-token-0123456789abcdef"))
    delivery = send(target)
    assert delivery.outcome == "refused", delivery
    assert_nothing_secret(delivery, target)


@pytest.mark.parametrize("robot", ROBOTS)
def test_the_robots_rate_limit_answer_is_rate_limited(robots: RobotServer, robot: Robot) -> None:
    target = channel(robots, robot, secret=None if robot == "wecom" else "right")
    robots.rate_limit(robot, 2)
    assert [send(target).outcome for _ in range(3)] == ["rate_limited", "rate_limited", "sent"]
    assert len(robots.messages(robot)) == 1


def test_the_per_minute_limit_answers_too_fast_past_twenty() -> None:
    with RobotServer(limit_per_minute=20) as robots:
        target = channel(robots, "wecom", secret=None)
        outcomes = [send(target).outcome for _ in range(21)]
    assert outcomes == ["sent"] * 20 + ["rate_limited"]


@pytest.mark.parametrize("how", ["503", "close"])
@pytest.mark.parametrize("robot", ROBOTS)
def test_a_robot_that_is_down_is_retried_and_takes_the_message_once_back(
    robots: RobotServer, robot: Robot, how: str
) -> None:
    target = channel(robots, robot, secret=None if robot == "wecom" else "right")
    robots.down(robot, 3600, how)  # type: ignore[arg-type]
    delivery = send(target)
    assert delivery.outcome == "retry", delivery
    assert_nothing_secret(delivery, target)
    robots.down(robot, 0)
    assert send(target).outcome == "sent"
    assert len(robots.messages(robot)) == 1


def test_connection_refused_is_retry_and_the_port_listens_again(robots: RobotServer) -> None:
    target = channel(robots, "dingtalk")
    robots.refuse_connections(1.0)
    delivery = send(target)
    assert delivery.outcome == "retry" and delivery.status is None
    assert "refused" in delivery.detail.lower()
    assert_nothing_secret(delivery, target)
    deadline = time.monotonic() + 30
    while send(target).outcome != "sent":
        assert time.monotonic() < deadline, "the stand-in never listened again"
        time.sleep(0.1)
    assert len(robots.messages("dingtalk")) == 1


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


def test_a_timeout_is_retry(silent_port: int) -> None:
    url = f"http://127.0.0.1:{silent_port}/robot/send?access_token=silent-token-0123456789"
    target = ChannelConfig(
        type="dingtalk", name="dingtalk", url=Secret(url), secret=Secret("SECsilent0123456789")
    )
    delivery = send(target, timeout_seconds=0.3)
    assert (delivery.outcome, delivery.status) == ("retry", None)
    assert "0.3 s" in delivery.detail
    assert_nothing_secret(delivery, target)


def test_no_url_or_secret_in_any_detail_or_log(robots: RobotServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    deliveries = []
    for robot in ROBOTS:
        target = channel(robots, robot, secret=None if robot == "wecom" else "right")
        deliveries.append((send(target), target))
        robots.rate_limit(robot, 1)
        deliveries.append((send(target), target))
    bad = ChannelConfig(
        type="webhook", name="webhook", url=Secret("http://[::1/hooks/kefu/bad-url-token-0123456789")
    )
    deliveries.append((send(bad), bad))
    assert deliveries[-1][0].outcome == "retry"
    for delivery, target in deliveries:
        assert_nothing_secret(delivery, target, caplog.text)


@pytest.mark.parametrize("robot", ["dingtalk", "wecom"])
def test_fits_says_whether_the_robot_takes_a_summary_whole(robots: RobotServer, robot: Robot) -> None:
    target = channel(robots, robot, secret=None if robot == "wecom" else "right")
    for agents in (100, 2000):
        rows = [(f"客服{n:04d}", 20.0) for n in range(agents)]
        notice = summary_notice("flagship", "旗舰店", rows, 15.0)
        outcome = send(target, notice=notice).outcome
        assert outcome == ("sent" if fits(target, notice) else "refused"), (agents, outcome)
    assert [m.text.count("客服0") for m in robots.messages(robot)] == [100]


def test_the_dingtalk_sign_is_url_encoded_as_the_robot_decodes_it(robots: RobotServer) -> None:
    # A base64 `+` sent raw would arrive as a space: pick a moment whose signature holds one.
    secret, now_ms = SECRETS["dingtalk"], int(time.time() * 1000)

    def signature(ms: int) -> bytes:
        return base64.b64encode(hmac.new(secret.encode(), f"{ms}\n{secret}".encode(), "sha256").digest())

    while b"+" not in signature(now_ms):
        now_ms -= 1
    target = channel(robots, "dingtalk")

    async def go() -> Delivery:
        async with aiohttp.ClientSession() as session:
            return await deliver(session, target, NOTICE, now_ms)

    assert asyncio.run(go()).outcome == "sent"


@pytest.mark.parametrize("robot", ["dingtalk", "wecom"])
def test_the_robots_busy_code_is_retried_not_refused(robot: Robot) -> None:
    """errcode -1 is "系统繁忙 … 建议稍候重试" in both robots' code tables: refusing it lost the alert."""
    busy = classify(robot, 200, '{"errcode": -1, "errmsg": "系统繁忙"}'.encode())
    assert busy.outcome == "retry" and "errcode -1" in busy.detail
    refused = classify(robot, 200, b'{"errcode": 310000, "errmsg": "keywords not in content"}')
    assert refused.outcome == "refused"


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 200_000 + b"]" * 200_000,  # json.loads raised RecursionError out of deliver
        b'{"errcode": 0, "errmsg": "' + b"x" * MAX_ANSWER_BYTES + b'"}',
    ],
    ids=["deeply-nested", "too-long"],
)
def test_an_answer_that_is_no_robots_is_retried_and_never_raises(body: bytes) -> None:
    """One robot's strange answer ended its channel's task, and then the whole notify service."""
    assert classify("dingtalk", 200, body).outcome == "retry"


def test_an_answer_that_arrives_in_pieces_is_read_whole() -> None:
    """One read returns what came so far: half of `{"errcode":0,"errmsg":"ok"}` was a `retry` of
    a message the robot had taken, which the retry then posted a second time."""
    from aiohttp import web

    posts: list[bytes] = []

    async def robot(request: web.Request) -> web.StreamResponse:
        posts.append(await request.read())
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"errcode":0,')
        await asyncio.sleep(0.05)
        await response.write(b'"errmsg":"ok"}')
        await response.write_eof()
        return response

    async def scenario() -> Delivery:
        app = web.Application()
        app.router.add_post("/robot/send", robot)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        target = ChannelConfig(
            type="dingtalk",
            name="ding",
            url=Secret(f"http://127.0.0.1:{port}/robot/send?access_token=abc0123456789def"),
        )
        try:
            async with aiohttp.ClientSession() as session:
                return await deliver(session, target, NOTICE, int(time.time() * 1000))
        finally:
            await runner.cleanup()

    assert asyncio.run(scenario()).outcome == "sent" and len(posts) == 1
