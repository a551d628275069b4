"""`notify`'s metrics, as a bundle on an injected registry (metrics.md, issue 30)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from prometheus_client import CollectorRegistry, Counter, Histogram

# From the alert's `ts` to the robot's answer: the threshold itself is 15 s away from the
# buyer's message, so the buckets look at seconds, with room for retries and quiet hours.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 180.0, 600.0, 3600.0)


class NotifyMetrics(NamedTuple):
    notifications: Counter  # {channel, outcome}
    latency: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry, prefix: str = "kefu") -> NotifyMetrics:
        return cls(
            Counter(
                f"{prefix}_notifications",
                "Robot messages and alerts by channel and outcome: sent, rate_limited, retry, refused "
                "(each attempt's answer), dead_letter, duplicate, dropped_quiet, stale (per alert).",
                ["channel", "outcome"],
                registry=registry,
            ),
            Histogram(
                f"{prefix}_notification_latency_seconds",
                "From an alert event's ts to the robot's answer accepting its message.",
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
        )

    def watch(self, channels: Iterable[str]) -> None:
        """Each channel's dead letters counted from 0 at start: a counter born at its first
        increment shows no increase, and KefuNotificationsLost would miss a channel's first loss."""
        for channel in channels:
            self.notifications.labels(channel=channel, outcome="dead_letter")

    def tally(self, channel: str, outcome: str, amount: int = 1) -> None:
        self.notifications.labels(channel=channel, outcome=outcome).inc(amount)
