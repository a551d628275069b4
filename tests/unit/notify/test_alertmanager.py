"""Alertmanager's webhook into alert events: decoding, refusals, one id per episode, and the
endpoint on notify's HTTP server feeding the dispatcher (ledger, wording) on a fake clock."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Sequence
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from config.settings import settings_from_yaml
from streams.contract.alerts import AlertEvent
from streams.notify.alertmanager import (
    MAX_BODY_BYTES,
    AlertmanagerIntake,
    BadPayload,
    RuleAlert,
    decode_webhook,
    epoch_ms,
)
from tests.unit.notify.test_service_dispatch import START_MS, rig, synchronous

STARTS = "2026-03-01T03:00:00.123456789Z"  # START_MS (11:00 in Shanghai) + 123 ms
ENDS = "2026-03-01T03:02:30Z"
SETTINGS = settings_from_yaml("shops:\n  s1:\n    name: 旗舰店\n    agents:\n      a: {name: 小美}\n")


def am_alert(status: str = "firing", **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "KefuConsumerLagHigh", "severity": "warning", **labels},
        "annotations": {"summary": "消费积压 Consumer lag high: kefu.messages", "description": "…"},
        "startsAt": STARTS,
        "endsAt": ENDS if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": "5f8c0a1b2c3d4e5f",
    }


def payload(*alerts: dict[str, Any], status: str = "firing") -> bytes:
    return json.dumps(
        {
            "version": "4",
            "groupKey": '{}:{shop="s1"}',
            "truncatedAlerts": 0,
            "receiver": "kefu-notify",
            "status": status,
            "alerts": list(alerts),
            "groupLabels": {},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
        }
    ).encode()


def test_a_firing_shop_alert_becomes_an_event_of_its_shop_and_agent() -> None:
    (event,) = decode_webhook(payload(am_alert(shop="s1", agent="a")))
    assert event == RuleAlert(
        alert="KefuConsumerLagHigh",
        state="firing",
        shop_id="s1",
        agent_id="a",
        value=0.0,
        threshold=0.0,
        ts=START_MS + 123,
        alert_id=f"am|5f8c0a1b2c3d4e5f|{STARTS}",
        summary="消费积压 Consumer lag high: kefu.messages",
    )


def test_a_resolved_alert_without_shop_or_agent_goes_to_the_defaults_at_its_end() -> None:
    (event,) = decode_webhook(payload(am_alert("resolved"), status="resolved"))
    assert (event.state, event.shop_id, event.agent_id) == ("resolved", "", "")
    assert event.ts == START_MS + 150_000
    assert event.alert_id == f"am|5f8c0a1b2c3d4e5f|{STARTS}"  # the firing's id: one episode


def test_numbers_are_read_where_a_rule_puts_them() -> None:
    alert = am_alert(shop="s1", agent="a", alertname="BuyerWaitingTooLong", threshold="15")
    alert["annotations"]["value"] = "23.4"
    (event,) = decode_webhook(payload(alert))
    assert (event.alert, event.value, event.threshold) == ("BuyerWaitingTooLong", 23.4, 15.0)


def test_repeats_of_an_episode_keep_one_id_and_the_next_episode_gets_another() -> None:
    first = decode_webhook(payload(am_alert(shop="s1")))[0].alert_id
    repeat = decode_webhook(payload(am_alert(shop="s1")))[0].alert_id
    later = am_alert(shop="s1")
    later["startsAt"] = "2026-03-01T05:00:00Z"
    assert first == repeat != decode_webhook(payload(later))[0].alert_id


def test_a_payload_without_fingerprints_gets_one_from_its_labels() -> None:
    one, two = am_alert(shop="s1"), am_alert(shop="s2")
    for alert in (one, two):
        del alert["fingerprint"]
    ids = [event.alert_id for event in decode_webhook(payload(one, two, copy.deepcopy(one)))]
    assert ids[0] == ids[2] != ids[1]


def without(key: str) -> dict[str, Any]:
    alert = am_alert(shop="s1")
    del alert[key]
    return alert


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"", "not an Alertmanager webhook payload"),
        (b"{not json", "not an Alertmanager webhook payload"),
        (b'{"alerts": {}}', "not an Alertmanager webhook payload"),
        (payload(without("startsAt")), "startsAt"),
        (payload({**am_alert(), "status": "pending"}), "not an Alertmanager webhook payload"),
        (payload({**am_alert(), "startsAt": "yesterday"}), "is not an RFC 3339 time"),
        (payload({**am_alert(), "labels": {"shop": "s1"}}), "no `alertname` label"),
        (json.dumps({"version": "3", "alerts": []}).encode(), "notify reads version 4"),
    ],
)
def test_a_bad_payload_is_one_sentence(body: bytes, says: str) -> None:
    with pytest.raises(BadPayload) as caught:
        decode_webhook(body)
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)


def test_times_with_offsets_and_fractions() -> None:
    assert epoch_ms("2026-03-01T11:00:00+08:00", "startsAt") == START_MS
    assert epoch_ms("2026-03-01T03:00:00.5Z", "startsAt") == START_MS + 500
    assert epoch_ms("0001-01-01T00:00:00Z", "endsAt") == 0


class Sink:
    def __init__(self) -> None:
        self.events: list[AlertEvent] = []

    async def accept_events(self, events: Sequence[AlertEvent]) -> None:
        self.events += events


async def post(
    intake: AlertmanagerIntake, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    app = web.Application()
    app.router.add_post("/alertmanager", intake.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"http://127.0.0.1:{port}/alertmanager", data=body, headers=headers) as response,
        ):
            return response.status, await response.text()
    finally:
        await runner.cleanup()


@synchronous
async def test_the_endpoint_answers_200_400_413_and_503() -> None:
    intake = AlertmanagerIntake()
    assert (await post(intake, payload(am_alert())))[0] == 503  # no dispatcher yet: retry later
    sink = Sink()
    intake.attach(sink)
    assert await post(intake, payload(am_alert(shop="s1"), am_alert("resolved"))) == (
        200,
        "accepted 2 alert(s)\n",
    )
    assert [event.state for event in sink.events] == ["firing", "resolved"]
    status, text = await post(intake, b"{not json")
    assert status == 400 and text.startswith("not an Alertmanager webhook payload")
    assert (await post(intake, b" " * (MAX_BODY_BYTES + 1)))[0] == 413
    assert len(sink.events) == 2


@synchronous
async def test_a_post_from_a_web_page_is_refused_and_posts_nothing() -> None:
    """Without a token notify is local, and a page the operator opened could post a forged alert
    into the shops' groups: a browser sends a text/plain POST anywhere without asking first. It
    always names its page (Origin); Alertmanager never does."""
    intake, sink = AlertmanagerIntake(), Sink()
    intake.attach(sink)
    forged = {"Origin": "https://evil.example", "Content-Type": "text/plain"}
    assert (await post(intake, payload(am_alert(shop="s1")), forged))[0] == 403
    assert sink.events == []
    assert (await post(intake, payload(am_alert(shop="s1"))))[0] == 200


@synchronous
async def test_the_rules_copies_of_the_workers_own_alerts_are_left_to_kefu_alerts() -> None:
    """The shipped rules alert on BuyerWaitingTooLong and FirstResponseSlow too, and the shipped
    Alertmanager posts them here: the group had two notices per episode (and two 已恢复), one
    from each path, as their ids never match. kefu.alerts carries the worker's own."""
    intake, sink = AlertmanagerIntake(), Sink()
    intake.attach(sink)
    body = payload(
        am_alert(shop="s1", agent="a", alertname="BuyerWaitingTooLong"),
        am_alert(shop="s1", agent="a", alertname="FirstResponseSlow"),
        am_alert(shop="s1", agent="a"),
    )
    assert await post(intake, body) == (
        200,
        "accepted 1 alert(s); 2 left to kefu.alerts, which carries them\n",
    )
    assert [event.alert for event in sink.events] == ["KefuConsumerLagHigh"]


@synchronous
async def test_through_the_dispatcher_one_message_per_episode_and_state_in_chinese() -> None:
    run = rig(SETTINGS)
    firing = decode_webhook(payload(am_alert(shop="s1", agent="a")))
    resolved = decode_webhook(payload(am_alert("resolved", shop="s1", agent="a")))
    for events in (firing, firing, resolved, resolved):  # Alertmanager repeats itself
        await run.dispatcher.accept_events(events)
        for _ in range(100):
            await run.dispatcher.settle_done()
            await asyncio.sleep(0)
    where, summary = (
        "【kefu-pulse 告警】旗舰店 · 小美 · KefuConsumerLagHigh",
        "消费积压 Consumer lag high: kefu.messages",
    )
    assert [notice.title for _, notice in run.robot.received] == [
        f"{where}：{summary}",
        f"{where}：已恢复（{summary}）",
    ]
    assert run.counted("duplicate", "none") == 2
    await run.dispatcher.close()


@synchronous
async def test_a_waiting_alert_with_its_seconds_reads_like_the_workers_own() -> None:
    run = rig(SETTINGS)
    alert = am_alert(shop="s1", agent="a", alertname="BuyerWaitingTooLong", value="23", threshold="15")
    await run.dispatcher.accept_events(decode_webhook(payload(alert)))
    for _ in range(100):
        await run.dispatcher.settle_done()
        await asyncio.sleep(0)
    assert [notice.title for _, notice in run.robot.received] == [
        "【客服预警】旗舰店 · 小美：买家已等待 23 秒（阈值 15 秒）"
    ]
    await run.dispatcher.close()


@synchronous
async def test_one_bad_alert_is_refused_alone_and_the_rest_of_its_payload_taken() -> None:
    """Alertmanager retries no 4xx: a 400 for one alert without `alertname` (or with a bad time)
    lost every other alert of its group's payload. Only a payload with nothing to take is a 400."""
    intake, sink = AlertmanagerIntake(), Sink()
    intake.attach(sink)
    no_name = am_alert(shop="s1")
    del no_name["labels"]["alertname"]
    body = payload(
        am_alert(shop="s1"), no_name, {**am_alert(shop="s2"), "startsAt": "yesterday"}, am_alert("resolved")
    )
    status, text = await post(intake, body)
    assert status == 200 and text.startswith("accepted 2 alert(s); refused 2: alert 2: ")
    assert "no `alertname` label" in text and "alert 3: startsAt 'yesterday' is not an RFC 3339 time" in text
    assert [event.state for event in sink.events] == ["firing", "resolved"]
    status, text = await post(intake, payload(no_name))
    assert status == 400 and "no `alertname` label" in text and len(sink.events) == 2
