"""The differential tests' shared ground: one simulated dataset with conversions in it, one way to
run it through a deployment, and the numbers compared (those that do not depend on the moment)."""

from __future__ import annotations

import itertools
import json
import signal
import time
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from streams.simulation.traffic import SimRecord, TrafficModel, TrafficShape
from tests.integration.harness import MID_RUN, Deployment, http_get, wait_for

SHOPS = ("shop0", "shop1", "shop2")
REFERENCE_DB = 10  # where the session's reference run keeps its state (conftest.py)
EVENTS = 12_000


def dataset() -> list[SimRecord]:
    start = time.time_ns() // 1_000_000 - 3 * 3_600_000  # three hours ago: inside today/28d, no future ts
    model = TrafficModel(TrafficShape(shops=len(SHOPS), agents=6, rate=200), seed=7)
    records = list(itertools.islice(model.records(start), EVENTS))
    return records + purchases(records)


def purchases(records: list[SimRecord], buyers_per_shop: int = 20) -> list[SimRecord]:
    """Orders, paid, from buyers an agent answered: 72 s of simulated traffic holds almost none
    that are credited, and a differential test of conversion needs them. Two orders of every
    tenth buyer are cancelled before payment, so `ordered` and `paid` differ."""
    answered: dict[str, list[tuple[bytes, int]]] = {}
    for record in records:
        try:
            event = json.loads(record.value)
        except ValueError:
            continue  # the malformed records mixed in
        if not isinstance(event, dict) or event.get("sender") != "agent" or event.get("auto_reply"):
            continue
        shop = record.key.split(b":", 1)[0].decode()
        buyers = answered.setdefault(shop, [])
        if len(buyers) < buyers_per_shop and all(key != record.key for key, _ in buyers):
            buyers.append((record.key, record.ts))
    end = max(r.ts for r in records)
    out: list[SimRecord] = []
    for shop, buyers in sorted(answered.items()):
        for n, (key, _) in enumerate(buyers):
            buyer = key.split(b":", 1)[1].decode()
            order_id = f"{shop}-P{n}"
            statuses = ("created", "cancelled") if n % 10 == 0 else ("created", "paid")
            for step, status in enumerate(statuses):
                event = {
                    "event_id": f"{order_id}-{status}",
                    "type": "order",
                    "shop_id": shop,
                    "buyer_id": buyer,
                    "order_id": order_id,
                    "status": status,
                    "amount": f"{100 + n}.50",
                    "ts": end + 1000 + n * 10 + step,
                }
                out.append(SimRecord(event["ts"], "orders", key, json.dumps(event).encode()))  # type: ignore[arg-type]
    return out


def comparable(floor: dict[str, Any]) -> dict[str, Any]:
    """Drop what depends on the moment of reading, keep every count and average."""
    return {
        row["agent"]: {
            "waiting": row["waiting_buyers"],
            "today": row["windows"]["today"],
            "28d": row["windows"]["28d"],
        }
        for row in floor["agents"]
    } | {"_totals": floor["totals"]["windows"]["28d"]}


def run(
    deployment: Deployment, records: list[SimRecord], workers: int = 1, kill_at: float | None = None
) -> dict[str, Any]:
    deployment.create_topics()
    last = deployment.produce((r.kind, r.key, r.value) for r in records)
    total = sum(offset + 1 for offset in last.values())
    ports = []
    for _ in range(workers):
        # Killed mid-run: slowed down, so that the kill lands while records still flow.
        ports.append(deployment.start_worker(**(MID_RUN if kill_at is not None else {}))[1])
    if kill_at is not None:

        def applied() -> int:
            return sum(o + 1 for tp, o in deployment.applied_offsets().items() if tp in last)

        wait_for(lambda: applied() >= total * kill_at, timeout=120, what="half the records applied")
        # The kill lands on a warm buyer-state cache (agents/store/state_cache.py): states the
        # restarted worker must read from Redis, not trust from a process that is gone.
        assert cache_hits(ports[0]) > 0, "the worker's state cache was cold at the kill"
        deployment.stop_workers(signal.SIGKILL)
        at_kill = applied()
        assert at_kill < total, "the worker finished before the kill: the test would prove nothing"
        deployment.start_worker()
    deployment.wait_applied(last, timeout=240)
    return {shop: comparable(deployment.stats(shop)) for shop in SHOPS}


def cache_hits(port: int) -> float:
    """kefu_state_cache_lookups_total{result="hit"} on the worker's /metrics."""
    for family in text_string_to_metric_families(http_get(port, "/metrics")):
        for sample in family.samples:
            if sample.name == "kefu_state_cache_lookups_total" and sample.labels == {"result": "hit"}:
                return sample.value
    raise AssertionError("the worker exports no kefu_state_cache_lookups_total")


def assert_not_empty(numbers: dict[str, Any]) -> None:
    """A differential test against an empty reference would prove nothing: every shop's
    reference run must have consultations, inquiries credited with orders, and payments."""
    for shop, rows in numbers.items():
        totals = rows["_totals"]
        assert totals["consultations"] > 100, f"{shop}: the reference run counted almost nothing"
        assert totals["ordered_inquiries"] > totals["paid_inquiries"] > 0, f"{shop}: no conversion: {totals}"


def numbers(deployment: Deployment) -> dict[str, Any]:
    return {shop: comparable(deployment.stats(shop)) for shop in SHOPS}
