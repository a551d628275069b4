"""The moments of a simulated day at which every read path is compared with the reference.

A few at random; most on edges: a second's and a minute's first and last millisecond, the last
millisecond a consultation is inside `5m` or `1h` and the first it is not, each shop's local
midnight (where `today` turns over and a cohort day passes from its 28th into its 29th day
of `28d`), and the opening and closing of service hours (where alerts stop and start again).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from tests.reference import DAY_MS, local_day, local_midnight
from tests.whole_path.shops import ShopPlan


@dataclass(frozen=True, order=True)
class Moment:
    at: int
    why: str
    # The shops whose read paths are compared (None: all); alerts are always compared.
    shops: tuple[str, ...] | None = None
    end_of_day: str | None = None  # a shop whose business day ends at `at` (its last millisecond)


def moments_of_day(
    day_start: int, plans: tuple[ShopPlan, ...], starts: list[int], rng: random.Random, per_day: int
) -> list[Moment]:
    """About `per_day` moments in [day_start, day_start + 1 day), sorted."""
    end = day_start + DAY_MS
    found: list[Moment] = []
    for _ in range(max(1, per_day // 4)):
        found.append(Moment(day_start + rng.randrange(DAY_MS), "a random moment"))
    second = (day_start + rng.randrange(DAY_MS)) // 1000 * 1000
    found += [Moment(second - 1, "a second's last millisecond"), Moment(second, "a second's first")]
    minute = (day_start + rng.randrange(DAY_MS)) // 60_000 * 60_000
    found += [Moment(minute - 1, "a minute's last millisecond"), Moment(minute, "a minute's first")]
    for _ in range(max(1, per_day // 6)):
        if starts:
            start_s = rng.choice(starts) // 1000
            length = rng.choice((300, 3600))
            last_in = (start_s + length - 1) * 1000 + 999
            name = "5m" if length == 300 else "1h"
            found.append(Moment(last_in, f"a consultation's last millisecond in {name}"))
            found.append(Moment(last_in + 1, f"a consultation's first millisecond out of {name}"))
    plan = plans[rng.randrange(len(plans))]
    zone = plan.rules.zone
    midnight = local_midnight(local_day(day_start, zone) + timedelta(days=1), zone)
    # The last millisecond of a business day, and the first of the next: 28d loses a cohort day.
    found.append(Moment(midnight - 1, f"{plan.shop}'s local midnight, last ms", (plan.shop,), plan.shop))
    found.append(Moment(midnight, f"{plan.shop}'s local midnight", (plan.shop,)))
    for plan in plans:
        if plan.rules.service_hours and rng.random() < 0.5:
            found += _service_edges(plan, day_start, rng)
    return sorted(m for m in found if day_start <= m.at < end)


def _service_edges(plan: ShopPlan, day_start: int, rng: random.Random) -> list[Moment]:
    assert plan.rules.service_hours is not None
    zone = plan.rules.zone
    local: date = local_day(day_start + DAY_MS // 2, zone)
    text = rng.choice(plan.rules.service_hours.split("-"))
    hour, minute = (int(part) for part in text.split(":"))
    edge = local_midnight(local, zone) + (hour * 60 + minute) * 60_000
    return [
        Moment(edge + delta, f"{plan.shop}'s service hours {text} {delta:+d} ms", (plan.shop,))
        for delta in (-1, 0, 1)
    ]
