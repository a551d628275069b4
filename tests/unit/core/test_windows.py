from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from agents.core.windows import WINDOWS, window_reads
from config.calendar import calendar_for

CAL = calendar_for("Asia/Shanghai")


@given(st.integers(1_700_000_000_000, 1_800_000_000_000))
def test_rolling_windows_cover_each_second_exactly_once(now_ms: int) -> None:
    reads = window_reads(now_ms, CAL)
    now_s = now_ms // 1000
    for bit, (name, length) in enumerate([("5m", 300), ("1h", 3600)]):
        covered: Counter[int] = Counter()
        for read in reads:
            if not read.mask & (1 << bit):
                continue
            assert read.kind in ("m", "s")
            if read.kind == "m":
                covered.update(range(read.ident * 60, read.ident * 60 + 60))
            else:
                covered.update(read.ident * 60 + s for s in range(read.lo, read.hi + 1))
        assert set(covered) == set(range(now_s - length + 1, now_s + 1)), name
        assert max(covered.values()) == 1, name


@given(st.integers(1_700_000_000_000, 1_800_000_000_000))
def test_day_windows_are_today_and_the_last_28_business_days(now_ms: int) -> None:
    reads = window_reads(now_ms, CAL)
    today = CAL.day(now_ms)
    days = {
        name: sorted(r.ident for r in reads if r.kind == "d" and r.mask & (1 << WINDOWS.index(name)))
        for name in ("today", "28d")
    }
    assert days["today"] == [today]
    assert days["28d"] == list(range(today - 27, today + 1))


def test_business_day_boundaries_in_shanghai() -> None:
    midnight = CAL.day_start_ms(CAL.day(1_764_000_000_000))
    assert CAL.day(midnight) == CAL.day(midnight - 1) + 1
    assert CAL.day_start_ms(CAL.day(midnight + 5)) == midnight
