"""The pure parts of `notify`: the minute's budget, folding, quiet hours, backoff."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec
import pytest

from streams.contract.alerts import AlertEvent
from streams.notify.folding import MINUTE_MS, Budget, Due, plan, without_resolved_pairs
from streams.notify.quiet import BadQuietHours, quiet_hours
from streams.notify.retry import Backoff, gives_up_reason
from streams.notify.robots import Delivery
from streams.render.notices import Names, Notice

SHANGHAI = ZoneInfo("Asia/Shanghai")


def event(agent: str, state: str = "firing", value: float = 20.0, episode: int = 1) -> AlertEvent:
    return AlertEvent(
        alert="BuyerWaitingTooLong",
        state=state,  # type: ignore[arg-type]
        shop_id="s1",
        agent_id=agent,
        value=value,
        threshold=15.0,
        ts=1_700_000_000_000,
        alert_id=f"BuyerWaitingTooLong|s1|{agent}|{episode}",
    )


def names_of(shop: str, agent: str) -> Names:
    return Names(shop="旗舰店", agent=f"客服{agent}")


def describe(alert: AlertEvent) -> Notice:
    return Notice(shop=alert.shop_id, title=alert.agent_id, markdown=alert.agent_id, text=alert.agent_id)


def local_ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=SHANGHAI).timestamp() * 1000)


def test_the_budget_allows_twenty_a_minute_then_says_when_the_next_may_go() -> None:
    budget = Budget(20)
    for second in range(20):
        budget.spend(second * 1000)
    assert budget.remaining(19_000) == 0
    assert budget.next_free_ms(19_000) == MINUTE_MS  # the first one leaves the minute
    assert budget.remaining(MINUTE_MS) == 1


def test_a_few_alerts_go_one_message_each() -> None:
    due = [Due(event(str(n)), n) for n in range(3)]
    messages, later = plan(due, 20, describe, names_of, None)
    assert [m.notice.title for m in messages] == ["0", "1", "2"] and later == []


def test_a_burst_beyond_the_budget_is_one_summary_naming_every_agent() -> None:
    due = [Due(event(str(n), value=16 + n % 30), n) for n in range(5000)]
    due.append(Due(event("x", "resolved"), -1))
    messages, later = plan(due, 20, describe, names_of, "http://wall/floor?shop=s1", max_bytes=10**6)
    assert len(messages) == 1 and len(messages[0].covers) == 5001 and later == []
    text = messages[0].notice.text
    assert "5000 位客服有买家等待超过 15 秒" in text
    assert all(f"客服{n} " in text for n in range(5000))
    assert "1 位客服已恢复：客服x" in text


def test_a_summary_tells_each_agent_as_its_last_event_left_it() -> None:
    """A 预警 and its own 已恢复 held together (the minute spent) were folded into "小美's buyer is
    waiting", with no 已恢复 ever after; a new episode after a resolution is waiting again."""
    due = [Due(event(str(n), value=16.0), n) for n in range(20)]
    due += [Due(event("xiaomei", value=23.0), 20), Due(event("xiaomei", "resolved", value=0.0), 21)]
    due += [Due(event("again", value=900.0), 22), Due(event("again", "resolved", value=0.0), 23)]
    due += [Due(event("again", value=31.0, episode=2), 24)]  # its own wait, not the last episode's
    messages, _ = plan(due, 20, describe, names_of, None, max_bytes=10**6)
    text = messages[0].notice.text
    assert "21 位客服有买家等待超过 15 秒" in text and "客服again 31 秒" in text
    assert "客服xiaomei 23 秒" not in text and "1 位客服已恢复：客服xiaomei" in text


def test_a_summary_quotes_the_agents_it_lists_without_acting_on_them() -> None:
    """The summary's extra lines (other alerts, the resolved) carried ids into the chat as they
    were: a link, a WeCom <@all>, a line of their own."""
    planted = "x](https://evil.example) <@all>\n**fake**"
    slow = msgspec.structs.replace(event(planted), alert="FirstResponseSlow")
    due = [Due(event(str(n)), n) for n in range(20)] + [Due(slow, 20), Due(event(planted, "resolved"), 21)]
    messages, _ = plan(due, 20, describe, lambda shop, agent: Names("旗舰店", agent), None, max_bytes=10**6)
    markdown = messages[0].notice.markdown
    assert "](" not in markdown and "<@" not in markdown and "\n**fake" not in markdown
    assert markdown.count("x］(https://evil.example) ＜@all＞ ＊＊fake＊＊") == 2  # both lines, inert


def test_a_burst_names_slow_first_responses_and_rule_alerts_apart_from_the_waits() -> None:
    slow = [msgspec.structs.replace(event(f"f{n}"), alert="FirstResponseSlow") for n in range(30)]
    rule = msgspec.structs.replace(event(""), alert="KafkaConsumerLag", value=0.0, threshold=0.0)
    due = [Due(e, n) for n, e in enumerate([*slow, rule, event("w", value=40.0)])]
    messages, _ = plan(due, 20, describe, names_of, None, max_bytes=10**6)
    text = messages[0].notice.text
    assert "1 位客服有买家等待超过 15 秒：客服w 40 秒" in text  # the slow ones are no buyer's wait
    assert "首次响应过慢 FirstResponseSlow：" + "、".join(f"客服f{n}" for n in range(30)) in text
    assert "KafkaConsumerLag：客服" in text


def test_a_burst_without_waits_counts_its_alerts() -> None:
    slow = [msgspec.structs.replace(event(f"f{n}"), alert="FirstResponseSlow") for n in range(30)]
    messages, _ = plan([Due(e, n) for n, e in enumerate(slow)], 20, describe, names_of, None, max_bytes=10**6)
    text = messages[0].notice.text
    assert "30 条告警" in text and "等待超过" not in text


def test_a_summary_too_long_for_the_robot_is_cut_and_what_the_minute_cannot_take_waits() -> None:
    due = [Due(event(str(n)), n) for n in range(5000)]
    messages, later = plan(due, 3, describe, names_of, None, max_bytes=16_000)
    assert len(messages) == 3 and all(len(m.notice.markdown.encode()) <= 20_000 for m in messages)
    assert sum(len(m.covers) for m in messages) + len(later) == 5000 and later


def test_nothing_is_planned_while_the_minute_is_spent() -> None:
    assert plan([Due(event("a"), 0)], 0, describe, names_of, None) == ([], [Due(event("a"), 0)])


def test_a_firing_and_its_resolution_both_held_through_quiet_hours_are_dropped() -> None:
    fired, resolved, other = event("a"), event("a", "resolved"), event("b")
    due = [Due(fired, 1, held=True), Due(resolved, 2, held=True), Due(other, 3, held=True)]
    kept, dropped = without_resolved_pairs(due)
    assert [d.ticket for d in kept] == [3] and [d.ticket for d in dropped] == [1, 2]
    # Outside quiet hours nothing is dropped: the group hears both.
    kept, dropped = without_resolved_pairs([Due(fired, 1), Due(resolved, 2)])
    assert len(kept) == 2 and dropped == []


@pytest.mark.parametrize(
    ("spec", "service", "now", "until"),
    [
        ("23:00-08:00", None, "2026-03-01T23:30", "2026-03-02T08:00"),
        ("23:00-08:00", None, "2026-03-02T07:59", "2026-03-02T08:00"),
        ("23:00-08:00", None, "2026-03-02T08:00", None),
        ("23:00-08:00", None, "2026-03-02T12:00", None),
        ("12:00-13:00", None, "2026-03-02T12:10", "2026-03-02T13:00"),
        ("outside_service_hours", "09:00-18:00", "2026-03-02T20:00", "2026-03-03T09:00"),
        ("outside_service_hours", "09:00-18:00", "2026-03-02T06:00", "2026-03-02T09:00"),
        ("outside_service_hours", "09:00-18:00", "2026-03-02T10:00", None),
        ("outside_service_hours", "08:00-24:00", "2026-03-02T02:00", "2026-03-02T08:00"),
    ],
)
def test_quiet_hours_end_in_the_shops_local_time(
    spec: str, service: str | None, now: str, until: str | None
) -> None:
    quiet = quiet_hours(spec, SHANGHAI, service)
    assert quiet is not None
    assert quiet.until_ms(local_ms(now)) == (None if until is None else local_ms(until))


def test_no_quiet_hours_when_none_are_set_or_the_shop_never_closes() -> None:
    assert quiet_hours(None, SHANGHAI, "09:00-18:00") is None
    assert quiet_hours("outside_service_hours", SHANGHAI, None) is None
    assert quiet_hours("outside_service_hours", SHANGHAI, "00:00-24:00") is None
    with pytest.raises(BadQuietHours):
        quiet_hours("nightly", SHANGHAI, None)


def test_backoff_doubles_up_to_its_cap_and_stops_at_retry_seconds() -> None:
    backoff = Backoff(retry_seconds=180)
    assert [backoff.delay_ms(n, 0) for n in range(7)] == [1000, 2000, 4000, 8000, 16000, 30000, 30000]
    assert backoff.delay_ms(3, 178_500) == 1500  # never past the budget
    assert backoff.delay_ms(3, 180_000) is None


def test_the_dead_letter_reason_says_what_the_robot_did_without_its_url() -> None:
    down = Delivery("retry", None, "cannot connect: refused")
    assert gives_up_reason(down, 180) == "notify: robot unreachable for 180 s"
    limited = Delivery("rate_limited", 200, "errcode 130101")
    assert gives_up_reason(limited, 6) == "notify: robot answered rate-limited for 6 s"


def test_each_channels_dead_letters_are_counted_from_zero_at_start() -> None:
    """A counter born at its first increment shows no increase(): KefuNotificationsLost
    missed each channel's first lost message (found in review)."""
    from prometheus_client import CollectorRegistry

    from streams.notify.metrics import NotifyMetrics

    registry = CollectorRegistry()
    NotifyMetrics.create(registry).watch(["ops", "leads"])
    samples = {
        channel: registry.get_sample_value(
            "kefu_notifications_total", {"channel": channel, "outcome": "dead_letter"}
        )
        for channel in ("ops", "leads", "other")
    }
    assert samples == {"ops": 0.0, "leads": 0.0, "other": None}
