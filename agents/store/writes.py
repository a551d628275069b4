"""Turn buyer deltas into one partition's share of a batch, merged so each key is touched once."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from agents.core.engine import BuyerDelta
from agents.core.policy import ShopPolicy
from agents.core.projection import DAY_HISTOGRAM_FIELDS, FIELD_NAMES, Counter, bucket_index
from agents.core.windows import FINE_RETENTION_MS, MINUTE_RETENTION_MS, SLIDING_TTL_MS, cohort_buckets
from agents.store import keys
from config.calendar import MS_PER_DAY, MS_PER_HOUR
from config.settings import MAX_RETENTION_DAYS

INDEX_TTL_MS = SLIDING_TTL_MS
# The shop and agent indexes also say who a report lists: they outlive the longest retention.
HISTORY_INDEX_TTL_MS = (MAX_RETENTION_DAYS + 1) * MS_PER_DAY
# Plain ints on the write path, as in projection.py: an IntEnum index costs there.
_REPLIED, _FIRST_RESPONSE_MS = int(Counter.REPLIED), int(Counter.FIRST_RESPONSE_MS)


@dataclass(slots=True)
class WriteSet:
    """What one partition's share of a batch changes: its buyers' states (committed with the
    partition's offsets) and the agents' counters, waiting sets and indexes (via the outbox)."""

    buyer_states: dict[str, bytes] = field(default_factory=dict)
    buyer_ttl_ms: dict[str, int] = field(default_factory=dict)
    increments: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    expire_at_ms: dict[str, int] = field(default_factory=dict)
    waits_add: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    waits_remove: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    agents_seen: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    # The drill-down rows (agents/core/details.py): details key -> field -> row, None to delete.
    # Their keys' expiries are in `expire_at_ms` too.
    details: dict[str, dict[str, bytes | None]] = field(default_factory=lambda: defaultdict(dict))

    def increment(self, key: str, name: str, amount: int, expire_at_ms: int) -> None:
        fields = self.increments[key]
        fields[name] = fields.get(name, 0) + amount
        if expire_at_ms > self.expire_at_ms.get(key, 0):
            self.expire_at_ms[key] = expire_at_ms


def add_buyer_delta(
    writes: WriteSet,
    policy: ShopPolicy,
    buyer_id: str,
    delta: BuyerDelta,
    now_ms: int,
) -> None:
    """One buyer's delta, merged into `writes`: its cohorts' counters, the agents' first-response
    histograms, its waits and its drill-down rows."""
    shop = policy.shop_id
    _add_cohorts(writes, policy, delta, now_ms)
    if delta.rows:
        _add_rows(writes, policy, delta, now_ms)
    index_expiry = now_ms + INDEX_TTL_MS
    for (agent, bucket), amount in delta.histogram.items():
        writes.increment(keys.histogram_key(shop, agent), str(bucket), amount, index_expiry)
    for agent, amount in delta.histogram_sum_ms.items():
        writes.increment(keys.histogram_key(shop, agent), "sum", amount, index_expiry)
    for agent, wait_start in delta.waits.items():
        key = keys.waiting_key(shop, agent)
        writes.expire_at_ms[key] = now_ms + policy.wait_limit_ms + MS_PER_HOUR
        if wait_start is None:
            writes.waits_add[key].pop(buyer_id, None)
            writes.waits_remove[key].add(buyer_id)
        else:
            writes.waits_remove[key].discard(buyer_id)
            writes.waits_add[key][buyer_id] = wait_start
        writes.agents_seen[shop][agent] = now_ms


def _add_cohorts(writes: WriteSet, policy: ShopPolicy, delta: BuyerDelta, now_ms: int) -> None:
    """The delta's cohort vectors, into their day, minute and second buckets."""
    shop = policy.shop_id
    calendar = policy.calendar
    day_expiry: dict[int, int] = {}
    for (agent, start), vector in delta.cohorts.items():
        day, minute, second = cohort_buckets(start, calendar, now_ms)
        expiry = day_expiry.get(day)
        if expiry is None:
            # Day buckets are the report's history: kept for the shop's retention_days.
            expiry = day_expiry[day] = calendar.day_start_ms(day + policy.retention_days) + MS_PER_HOUR
        day_key = keys.bucket_key(shop, agent, "d", day)
        minute_key = keys.bucket_key(shop, agent, "m", minute) if minute is not None else None
        second_key = (
            keys.bucket_key(shop, agent, "s", minute) if minute is not None and second is not None else None
        )
        minute_end = (minute + 1) * 60_000 if minute is not None else 0
        for index, amount in enumerate(vector):
            if not amount:
                continue
            name = FIELD_NAMES[index]
            writes.increment(day_key, name, amount, expiry)
            if minute_key is not None:
                writes.increment(minute_key, name, amount, minute_end + MINUTE_RETENTION_MS)
                if second_key is not None:
                    writes.increment(second_key, f"{name}:{second}", amount, minute_end + FINE_RETENTION_MS)
        # A `Counter.REPLIED` change of ±1 is exactly one consultation's first reply (engine.py's histogram
        # rule), so the day's distribution of first responses follows it for the report.
        replied = vector[_REPLIED]
        if replied == 1 or replied == -1:
            histogram_field = DAY_HISTOGRAM_FIELDS[bucket_index(vector[_FIRST_RESPONSE_MS] * replied)]
            writes.increment(day_key, histogram_field, replied, expiry)
        writes.agents_seen[shop][agent] = now_ms


def _add_rows(writes: WriteSet, policy: ShopPolicy, delta: BuyerDelta, now_ms: int) -> None:
    """The delta's rows, into their days' details hashes, kept `details_days` business days like
    the day buckets' retention. A row of a day the lists no longer keep (a rebuild replays
    `retention_days`) is not written: its key would expire at once."""
    shop = policy.shop_id
    calendar = policy.calendar
    day_expiry: dict[int, int] = {}
    for row_key, row in delta.rows.items():
        day = row_key.day
        expiry = day_expiry.get(day)
        if expiry is None:
            expiry = day_expiry[day] = calendar.day_start_ms(day + policy.details_days) + MS_PER_HOUR
        if expiry <= now_ms:
            continue
        key = keys.details_key(shop, row_key.agent, day)
        writes.details[key][row_key.field] = row
        writes.expire_at_ms[key] = expiry
