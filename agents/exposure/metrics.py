"""Process-local counters, as a bundle on an injected registry (tests pass a fresh one)."""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class WorkerMetrics(NamedTuple):
    events: Counter
    rejected: Counter
    filtered: Counter
    batches: Counter
    batch_seconds: Histogram
    event_lag_seconds: Histogram
    conflicts: Counter
    redis_errors: Counter
    lag: Gauge
    alerts: Counter

    def start_at_zero(self, labels: dict[Counter, list[tuple[str, ...]]]) -> None:
        """Export these label sets at 0 from the start: a healthy zero shows as 0 on a
        dashboard, not as "No data" (Prometheus: "avoid missing metrics")."""
        for counter, label_sets in labels.items():
            for values in label_sets:
                counter.labels(*values)

    @classmethod
    def create(cls, registry: CollectorRegistry, prefix: str = "kefu") -> WorkerMetrics:
        counter = partial(Counter, registry=registry)
        return cls(
            events=counter(f"{prefix}_events", "Input records by topic and outcome.", ["topic", "outcome"]),
            rejected=counter(f"{prefix}_events_rejected", "Rejected input records by reason.", ["reason"]),
            filtered=counter(
                f"{prefix}_events_filtered",
                "Events of block-listed buyers (counted as applied; they change no metric).",
                ["shop"],
            ),
            batches=counter(f"{prefix}_batches", "Batches committed to Redis."),
            batch_seconds=Histogram(
                f"{prefix}_batch_seconds",
                "Time to apply one batch (decode, compute, commit).",
                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
                registry=registry,
            ),
            event_lag_seconds=Histogram(
                f"{prefix}_event_lag_seconds",
                "End-to-end lag: from the event time of each batch's newest event to its being applied.",
                buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
                registry=registry,
            ),
            conflicts=counter(f"{prefix}_commit_conflicts", "Batches recomputed because a partition moved."),
            lag=Gauge(
                f"{prefix}_consumer_lag",
                "Records behind the log end, per input partition this worker owns.",
                ["topic", "partition"],
                registry=registry,
            ),
            alerts=counter(f"{prefix}_alert_events", "Alert events sent.", ["alert", "state"]),
            redis_errors=counter(f"{prefix}_redis_errors", "Redis errors met while applying."),
        )
