"""The buyer-state cache's figures (agents/store/state_cache.py), read at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agents.store.state_cache import CacheStats


class StateCacheCollector(Collector):
    def __init__(self, stats: CacheStats, limit: int) -> None:
        self.stats = stats
        self.limit = limit

    def collect(self) -> Iterator[Metric]:
        stats = self.stats
        yield GaugeMetricFamily(
            "kefu_state_cache_buyers", "Buyer states this worker keeps between batches.", value=stats.buyers
        )
        yield GaugeMetricFamily(
            "kefu_state_cache_limit", "processing.state_cache_buyers (0: the cache is off).", value=self.limit
        )
        lookups = CounterMetricFamily(
            "kefu_state_cache_lookups",
            "Buyer states a batch needed, by where they came from.",
            labels=["result"],
        )
        lookups.add_metric(["hit"], stats.hits)
        lookups.add_metric(["miss"], stats.misses)
        yield lookups
        yield CounterMetricFamily(
            "kefu_state_cache_dropped",
            "Partitions whose cached states were dropped because another worker had applied records there.",
            value=stats.dropped,
        )
        yield CounterMetricFamily(
            "kefu_state_cache_evicted", "States dropped to stay within the limit.", value=stats.evicted
        )
