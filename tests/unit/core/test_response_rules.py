"""Every response-metric rule of metrics.md, one example each."""

from __future__ import annotations

from tests.builders import Ledger, agent_msg, at, buyer_msg, settings, transfer


def test_consultation_starts_at_first_buyer_message_and_counts_once_a_day() -> None:
    ledger = Ledger().apply(buyer_msg(at(10)), buyer_msg(at(10, 5)), buyer_msg(at(11)))
    assert ledger.day().consultations == 1
    assert ledger.day().replied == 0
    assert ledger.waits[("s1", "s1:a")] == {"b1": at(10)}


def test_auto_reply_never_counts_but_an_emoji_does() -> None:
    ledger = Ledger().apply(buyer_msg(at(10)), agent_msg(at(10, 0, 1), auto=True))
    assert ledger.day().replied == 0 and ledger.waits[("s1", "s1:a")]
    ledger.apply(agent_msg(at(10, 0, 9)))  # content is not in the event: any agent message counts
    day = ledger.day()
    assert (day.replied, day.first_response_ms, day.waits_ended, day.wait_ms) == (1, 9000, 1, 9000)
    assert ledger.waits[("s1", "s1:a")] == {}


def test_buyer_messages_inside_a_wait_do_not_restart_it() -> None:
    ledger = Ledger().apply(
        buyer_msg(at(10)),
        buyer_msg(at(10, 0, 4)),
        buyer_msg(at(10, 0, 8)),
        agent_msg(at(10, 0, 20)),
        buyer_msg(at(10, 1)),
        buyer_msg(at(10, 1, 5)),
        agent_msg(at(10, 1, 10)),
    )
    day = ledger.day()
    assert (day.waits_ended, day.wait_ms) == (2, 20_000 + 10_000)
    assert (day.replied, day.first_response_ms) == (1, 20_000)


def test_agent_message_before_any_buyer_message_is_not_a_reply() -> None:
    ledger = Ledger().apply(agent_msg(at(9)), buyer_msg(at(10)))
    assert ledger.day().consultations == 1 and ledger.day().replied == 0
    assert ledger.waits[("s1", "s1:a")] == {"b1": at(10)}


def test_reply_at_the_same_millisecond_as_the_start_counts() -> None:
    ledger = Ledger().apply(buyer_msg(at(10)), agent_msg(at(10)))
    assert (ledger.day().replied, ledger.day().first_response_ms) == (1, 0)


def test_other_agents_reply_does_not_answer() -> None:
    ledger = Ledger().apply(buyer_msg(at(10), agent="s1:a"), agent_msg(at(10, 0, 5), agent="s1:b"))
    assert ledger.day("s1:a").replied == 0
    assert ledger.day("s1:b").consultations == 0


def test_reply_just_after_midnight_answers_yesterdays_consultation() -> None:
    ledger = Ledger(now_ms=at(1, day=1)).apply(buyer_msg(at(23, 59, 50)), agent_msg(at(0, 0, 10, day=1)))
    yesterday = ledger.day(day=0)
    assert (yesterday.consultations, yesterday.replied, yesterday.first_response_ms) == (1, 1, 20_000)
    assert ledger.day(day=1).consultations == 0


def test_reply_marks_every_unreplied_consultation_of_that_agent_up_to_it() -> None:
    ledger = Ledger(now_ms=at(12, day=1)).apply(
        buyer_msg(at(22)), buyer_msg(at(9, day=1)), agent_msg(at(9, 0, 30, day=1))
    )
    assert ledger.day(day=0).replied == 1 and ledger.day(day=0).first_response_ms == 11 * 3_600_000 + 30_000
    assert ledger.day(day=1).replied == 1 and ledger.day(day=1).first_response_ms == 30_000
    # The wait that started yesterday never restarted: one sample, from 22:00.
    assert ledger.day(day=0).waits_ended == 1 and ledger.day(day=1).waits_ended == 0


def test_new_business_day_starts_a_new_consultation() -> None:
    ledger = Ledger(now_ms=at(12, day=1)).apply(
        buyer_msg(at(10)), agent_msg(at(10, 0, 5)), buyer_msg(at(10, day=1)), agent_msg(at(10, 0, 7, day=1))
    )
    assert ledger.day(day=0).consultations == 1 and ledger.day(day=1).consultations == 1
    assert ledger.day(day=1).first_response_ms == 7000


def test_business_day_follows_the_shops_time_zone() -> None:
    # 23:30 in Shanghai is 15:30 UTC the same day; in UTC the shop's day is still day 0 until 16:00 UTC.
    utc_shop = settings("shops: {s2: {timezone: UTC}}")
    ledger = Ledger(settings=utc_shop, now_ms=at(23, 59, day=1)).apply(
        buyer_msg(at(7, 30), shop="s2", agent="s2:a"), buyer_msg(at(8, 30), shop="s2", agent="s2:a")
    )
    # 07:30 and 08:30 Shanghai are 23:30 and 00:30 UTC: two different business days for s2.
    assert sum(v[0] for k, v in ledger.by_day.items() if k[0] == "s2") == 2


def test_transfer_moves_the_wait_with_its_original_start_and_opens_a_consultation() -> None:
    ledger = Ledger().apply(
        buyer_msg(at(10), agent="s1:a"),
        transfer(at(10, 0, 30), "s1:a", "s1:b"),
        agent_msg(at(10, 0, 50), agent="s1:b"),
    )
    a, b = ledger.day("s1:a"), ledger.day("s1:b")
    assert (a.consultations, a.replied, a.waits_ended) == (1, 0, 0)
    assert (b.consultations, b.replied, b.first_response_ms) == (
        1,
        1,
        20_000,
    )  # b's consultation starts at the transfer
    assert (b.waits_ended, b.wait_ms) == (1, 50_000)  # the wait kept its 10:00 start
    assert ledger.waits[("s1", "s1:a")] == {} and ledger.waits[("s1", "s1:b")] == {}


def test_transfer_keeps_an_existing_consultation_of_the_receiving_agent() -> None:
    ledger = Ledger().apply(
        buyer_msg(at(9), agent="s1:b"),
        agent_msg(at(9, 0, 5), agent="s1:b"),
        buyer_msg(at(10), agent="s1:a"),
        transfer(at(10, 1), "s1:a", "s1:b"),
    )
    assert ledger.day("s1:b").consultations == 1
    assert ledger.waits[("s1", "s1:b")] == {"b1": at(10)}


def test_transfer_without_an_open_wait_moves_nothing() -> None:
    ledger = Ledger().apply(buyer_msg(at(10)), agent_msg(at(10, 0, 5)), transfer(at(10, 1), "s1:a", "s1:b"))
    assert ledger.waits[("s1", "s1:b")] == {}
    assert ledger.day("s1:b").consultations == 1 and ledger.day("s1:b").replied == 0


def test_wait_older_than_the_limit_is_dropped_unanswered() -> None:
    ledger = Ledger(now_ms=at(12, day=1)).apply(buyer_msg(at(9)), buyer_msg(at(9, 0, 1, day=1)))
    # The 24 h limit passed before the second message: a new wait starts, the old is unanswered.
    assert ledger.waits[("s1", "s1:a")] == {"b1": at(9, 0, 1, day=1)}
    ledger.apply(agent_msg(at(9, 1, day=1)))
    assert ledger.day(day=0).waits_ended == 0 and ledger.day(day=1).waits_ended == 1
    # ...but the reply still marks yesterday's consultation replied (metrics.md).
    assert ledger.day(day=0).replied == 1


def test_blocked_buyers_are_excluded_from_everything() -> None:
    config = settings('shops: {s1: {block: ["ad_spam_*", "*:service"]}}')
    ledger = Ledger(settings=config).apply(
        buyer_msg(at(10), buyer="ad_spam_01"),
        buyer_msg(at(10), buyer="other:service"),
        agent_msg(at(10, 1), buyer="ad_spam_01"),
    )
    assert ledger.day().consultations == 0 and not ledger.waits
    assert ledger.outcomes == ["filtered"] * 3


def test_duplicates_change_nothing() -> None:
    first = buyer_msg(at(10), event_id="same")
    ledger = Ledger().apply(first, buyer_msg(at(10, 5), event_id="same"), agent_msg(at(10, 0, 3)))
    assert ledger.outcomes == ["applied", "duplicate", "applied"]
    assert ledger.day().consultations == 1 and ledger.day().first_response_ms == 3000
    # A redelivered reply (same id) must not add a second wait sample.
    ledger.apply(
        buyer_msg(at(10, 1)),
        agent_msg(at(10, 1, 4), event_id="reply"),
        agent_msg(at(10, 1, 4), event_id="reply"),
    )
    assert (ledger.day().waits_ended, ledger.outcomes[-1]) == (2, "duplicate")


def test_events_older_than_every_window_are_late_and_skipped() -> None:
    ledger = Ledger(now_ms=at(10, day=30)).apply(buyer_msg(at(10, day=2)), buyer_msg(at(10, day=3)))
    assert ledger.outcomes == ["late", "applied"]


def test_first_response_histogram_buckets() -> None:
    ledger = Ledger().apply(
        buyer_msg(at(10), buyer="x"),
        agent_msg(at(10, 0, 1), buyer="x"),
        buyer_msg(at(10), buyer="y"),
        agent_msg(at(10, 0, 15), buyer="y"),
        buyer_msg(at(10), buyer="z"),
        agent_msg(at(10, 10), buyer="z"),
    )
    assert dict(ledger.histogram) == {("s1", "s1:a", 0): 1, ("s1", "s1:a", 4): 1, ("s1", "s1:a", 9): 1}


def test_one_batch_equals_one_event_at_a_time() -> None:
    events = [
        buyer_msg(at(10)),
        buyer_msg(at(10, 0, 2)),
        agent_msg(at(10, 0, 7)),
        transfer(at(10, 1), "s1:a", "s1:b"),
        buyer_msg(at(10, 2)),
        agent_msg(at(10, 2, 9), agent="s1:b"),
        buyer_msg(at(10, 3), event_id="d"),
        buyer_msg(at(10, 3), event_id="d"),
    ]
    single = Ledger().apply(*events)
    batched = Ledger().apply_batch(events)
    assert single.by_start == batched.by_start and single.waits == batched.waits
