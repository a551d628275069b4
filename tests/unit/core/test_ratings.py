"""metrics.md v3 "Satisfaction", rule by rule, with the values worked out by hand in each test.

A rating rates the buyer's most recent consultation with the rated agent that started at or
before it, at most `rating_days` (default 3) business days before it; otherwise it is unmatched: counted
as such, never credited. A later rating of the same consultation replaces the earlier one.
"""

from __future__ import annotations

from agents.core.projection import WIDTH
from agents.core.values import window_values
from tests.builders import Counts, Ledger, agent_msg, at, buyer_msg, order, rating, settings

TARGETS = (15, 180)


def ledger(config: str = "", now: int = at(12, day=5)) -> Ledger:
    return Ledger(settings=settings(config), now_ms=now)


def rated(counts: Counts) -> tuple[int, int, int, int]:
    return counts.rated, counts.satisfied, counts.dissatisfied, counts.rating_score


def test_rating_days_counts_business_days_from_the_consultations_day() -> None:
    """events.md: "at most `rating_days` (default 3) business days before it". A consultation of
    day 0 00:30 is rated to the last ms of day 3, 95 h later; from day 4's midnight it is not."""
    start = at(0, 30)
    inside = ledger().apply(buyer_msg(start), agent_msg(at(0, 31)), rating(at(24, day=3) - 1, 5))
    assert rated(inside.day()) == (1, 1, 0, 5) and inside.outcomes[-1] == "applied"
    past = ledger().apply(buyer_msg(start), agent_msg(at(0, 31)), rating(at(0, day=4), 5))
    assert rated(past.day()) == (0, 0, 0, 0) and past.outcomes[-1] == "unmatched"


def test_a_late_evening_consultation_is_rated_for_the_same_business_days_not_72_hours() -> None:
    """A consultation of day 0 23:50: a rating on day 3 at 23:55 is 72 h 5 min later and still in
    its third business day."""
    start = at(23, 50)
    book = ledger().apply(buyer_msg(start), agent_msg(at(23, 51)), rating(at(23, 55, day=3), 2))
    assert rated(book.day()) == (1, 0, 1, 2) and book.outcomes[-1] == "applied"


def test_rating_days_is_per_shop() -> None:
    book = ledger("shops: {s1: {rating_days: 1}}")
    book.apply(buyer_msg(at(10)), rating(at(0, day=2), 4))
    assert book.outcomes[-1] == "unmatched" and rated(book.day()) == (0, 0, 0, 0)
    kept = ledger("shops: {s1: {rating_days: 1}}").apply(buyer_msg(at(10)), rating(at(24, day=1) - 1, 4))
    assert kept.outcomes[-1] == "applied" and rated(kept.day()) == (1, 1, 0, 4)


def test_a_rating_before_any_consultation_is_unmatched_and_a_later_one_does_not_take_it() -> None:
    book = ledger().apply(rating(at(9), 5), buyer_msg(at(10)), agent_msg(at(10, 1)))
    assert book.outcomes == ["unmatched", "applied", "applied"]
    assert rated(book.day()) == (0, 0, 0, 0)


def test_a_rating_of_another_agent_is_unmatched() -> None:
    book = ledger().apply(buyer_msg(at(10), agent="s1:a"), rating(at(11), 5, agent="s1:b"))
    assert book.outcomes[-1] == "unmatched"
    assert rated(book.day("s1:a")) == (0, 0, 0, 0) and rated(book.day("s1:b")) == (0, 0, 0, 0)


def test_a_rating_before_the_consultation_started_does_not_rate_it() -> None:
    # Yesterday's consultation is the latest that started at or before the rating's time.
    book = ledger().apply(
        buyer_msg(at(10)), buyer_msg(at(10, day=1)), rating(at(9, day=1), 2, event_id="late-rating")
    )
    assert rated(book.day(day=0)) == (1, 0, 1, 2) and rated(book.day(day=1)) == (0, 0, 0, 0)


def test_the_most_recent_consultation_is_the_one_rated() -> None:
    book = ledger().apply(buyer_msg(at(10)), buyer_msg(at(10, day=1)), rating(at(12, day=1), 4))
    assert rated(book.day(day=0)) == (0, 0, 0, 0) and rated(book.day(day=1)) == (1, 1, 0, 4)


def test_a_second_rating_replaces_the_first_and_an_older_one_arriving_late_does_not() -> None:
    book = ledger().apply(buyer_msg(at(10)), agent_msg(at(10, 1)), rating(at(11), 1))
    assert rated(book.day()) == (1, 0, 1, 1)
    book.apply(rating(at(12), 5))  # the buyer changed the rating: 1 -> 5
    assert rated(book.day()) == (1, 1, 0, 5)
    book.apply(rating(at(11, 30), 2))  # an older rating, delivered late, does not win
    assert rated(book.day()) == (1, 1, 0, 5) and book.outcomes[-1] == "applied"


def test_a_duplicate_rating_is_a_duplicate_even_when_it_rated_nothing() -> None:
    first = rating(at(9), 5, event_id="r-dup")
    book = ledger().apply(first, first)
    assert book.outcomes == ["unmatched", "duplicate"]


def test_an_after_sale_consultation_is_rated_like_any_other() -> None:
    # Paid yesterday: today's consultation is after-sale (no inquiry), and its rating still counts.
    book = ledger().apply(
        order(at(10, day=-1), "T1", "paid"), buyer_msg(at(10)), agent_msg(at(10, 1)), rating(at(11), 3)
    )
    counts = book.day()
    assert (counts.consultations, counts.inquiries) == (1, 0)
    assert rated(counts) == (1, 0, 0, 3)


def test_an_unreplied_consultation_can_be_rated() -> None:
    book = ledger().apply(buyer_msg(at(10)), rating(at(11), 1))
    counts = book.day()
    assert (counts.replied, *rated(counts)) == (0, 1, 0, 1, 1)


def test_window_values_from_the_rating_counters() -> None:
    # Four consultations, three replied, three rated 5, 4 and 1: rating ratio 3/3, satisfaction
    # 2/3, one dissatisfied, mean score 10/3.
    book = ledger()
    for n, score in enumerate((5, 4, 1)):
        buyer = f"b{n}"
        book.apply(
            buyer_msg(at(10), buyer=buyer),
            agent_msg(at(10, 1), buyer=buyer),
            rating(at(11), score, buyer=buyer),
        )
    book.apply(buyer_msg(at(10), buyer="b9"))
    vector = book.by_day[("s1", "s1:a", book.policy().calendar.day(at(0)))]
    values = window_values(vector, TARGETS)
    assert values.rated_consultations == 3 and values.dissatisfied_consultations == 1
    assert values.rating_ratio == 1.0 and values.satisfaction_ratio == 2 / 3
    assert values.average_rating_score == round(10 / 3, 3)


def test_no_rating_means_absent_ratios_not_zero() -> None:
    values = window_values([0] * WIDTH, TARGETS)
    assert values.rated_consultations == 0
    assert (
        values.rating_ratio is None
        and values.satisfaction_ratio is None
        and values.average_rating_score is None
    )
