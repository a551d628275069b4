"""The worker's long-lived parts (store, processor, floor reader, metrics), wired once by `create`.

What the leader does with them lives in agents/worker/leader.py; the runtime owns its `Leader`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Info, generate_latest

from agents.core import alerts
from agents.core.compiled import core_status
from agents.core.policy import PolicyBook
from agents.exposure.cache_metrics import StateCacheCollector
from agents.exposure.collector import FloorCollector
from agents.exposure.floor import FloorReader
from agents.exposure.floor_exposition import FloorText
from agents.exposure.metrics import WorkerMetrics
from agents.exposure.report import ReportReader
from agents.exposure.trend import TrendReader
from agents.processing.batch import OUTCOMES, BatchProcessor, DeadLetterSink, retry_counted
from agents.processing.status import StatusProcessor
from agents.store.apply_behind import ApplyBehind
from agents.store.batches import offset_ttl_ms
from agents.store.connect import connect
from agents.store.native import native_murmur2, native_status
from agents.store.redis_store import RedisStore
from agents.worker import heap
from agents.worker.leader import AlertSink, Leader
from config.settings import Settings
from streams.wire.deadletter import DeadLetter
from streams.wire.decoding import EventDecoder, Reason
from streams.wire.partitioning import Partitioner
from streams.wire.records import KafkaRecord
from streams.wire.status_decoding import StatusDecoder

__all__ = ["AlertSink", "Runtime"]

# On revocation and shutdown, after the batch in flight: the longest wait for its apply behind.
FINISH_APPLY_TIMEOUT_S = 5.0


class _Unsent:
    """A dead-letter sink that leaves out the letters the workers sent already (rebuild)."""

    def __init__(self, store: RedisStore, send: DeadLetterSink) -> None:
        self.store, self.send = store, send
        self._lettered: dict[tuple[str, int], int] | None = None  # read at the first letter

    async def __call__(self, letters: Sequence[DeadLetter]) -> None:
        if self._lettered is None:
            self._lettered = await self.store.lettered()
        sent_up_to = self._lettered
        unsent = [item for item in letters if item.offset > sent_up_to.get((item.topic, item.partition), -1)]
        if unsent:
            await self.send(unsent)


@dataclass
class Runtime:
    settings: Settings
    registry: CollectorRegistry
    metrics: WorkerMetrics
    collector: FloorCollector
    store: RedisStore
    policies: PolicyBook
    reader: FloorReader
    processor: BatchProcessor
    alert_sink: AlertSink
    reports: ReportReader
    trends: TrendReader
    floor_text: FloorText = field(default_factory=FloorText)
    status: StatusProcessor | None = None  # kefu.agents (v3), made by `create`
    # The input topics this worker consumes: resumed from Redis on assignment, measured for lag.
    consumed_topics: set[str] = field(default_factory=set)
    leader: Leader = field(init=False, repr=False, compare=False)  # its duties, over these parts
    # Set by the worker and `rebuild` processes (streams/commands/main.py), never by tests that
    # make runtimes by the hundred: the first batch finds the process running, and what exists
    # then leaves the collector's walk (agents/worker/heap.py).
    settle_heap: bool = field(default=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.leader = Leader(self)

    @classmethod
    def create(
        cls,
        settings: Settings,
        dead_letters: DeadLetterSink,
        alert_sink: AlertSink,
        apply_behind: bool = False,
    ) -> Runtime:
        """`apply_behind`: a batch's outboxes are applied while the next batch is computed
        (agents/store/apply_behind.py), so a batch's numbers show after its handler returns."""
        registry = CollectorRegistry()
        metrics = _worker_metrics(registry, settings)
        collector = FloorCollector()  # not in `registry`: `exposition` writes its text faster
        cache_limit = settings.processing.state_cache_buyers
        behind = (
            ApplyBehind(retry_counted(metrics, "applying a committed batch's outboxes"))
            if apply_behind
            else None
        )
        store = RedisStore(connect(settings.redis.url), offset_ttl_ms(settings), cache_limit, behind)
        registry.register(StateCacheCollector(store.batches.stats, cache_limit))
        policies = PolicyBook(settings)
        processor, status = _processors(settings, store, policies, dead_letters, metrics)
        reader = FloorReader(store, policies, store)
        reports = ReportReader(store, policies, store)
        trends = TrendReader(store, reader)
        return cls(
            settings,
            registry,
            metrics,
            collector,
            store,
            policies,
            reader,
            processor,
            alert_sink,
            reports,
            trends,
            status=status,
        )

    def exposition(self) -> bytes:
        """The `/metrics` body: the process's counters, then the floor of the latest snapshot."""
        return generate_latest(self.registry) + self.floor_text.of(self.collector.snapshot)

    async def apply_until_done(self, records: Sequence[KafkaRecord]) -> None:
        """The batch handler: see BatchProcessor.process_until_done."""
        self._settle_heap()
        await self.processor.process_until_done(records)

    async def finish_applying(self) -> None:
        """Revocation and shutdown: the last batch's outboxes, applied behind, get a few seconds
        to land (agents/store/apply_behind.py)."""
        if self.store.behind is not None:
            await self.store.behind.finish(FINISH_APPLY_TIMEOUT_S)

    async def apply_any_until_done(self, records: Sequence[KafkaRecord]) -> None:
        """Records of any input topic (`rebuild` reads them all at once): each to its processor."""
        self._settle_heap()
        agents = self.settings.kafka.topics.agents
        status = [record for record in records if record.topic == agents]
        if status:
            await self.apply_status_until_done(status)
        await self.apply_until_done([record for record in records if record.topic != agents])

    def _settle_heap(self) -> None:
        if self.settle_heap:
            self.settle_heap = False
            heap.settle()

    async def apply_status_until_done(self, records: Sequence[KafkaRecord]) -> None:
        """The batch handler of kefu.agents: see StatusProcessor.process_until_done."""
        if self.status is None:
            raise RuntimeError("this runtime was built without agent status (Runtime.create makes it)")
        await self.status.process_until_done(records)

    def replay_history(self) -> None:
        """`rebuild`: restore history back to each shop's retention, and send the dead letters
        of only the records no worker read (those that came while the workers were stopped,
        say): up to where the workers had read, theirs are on kefu.deadletter already, and a
        rebuild replays every record still in retention, once per rebuild. Rejections are
        counted either way. Where the workers had read is what delete_state noted."""
        unsent = _Unsent(self.store, self.processor.dead_letters)
        self.processor.restore_history = True
        self.processor.dead_letters = unsent
        if self.status is not None:
            self.status.dead_letters = _Unsent(self.store, self.status.dead_letters)

    async def lead(self, now_ms: int | None = None) -> None:
        """One round of the leader's duties: see Leader.lead."""
        await self.leader.lead(now_ms)

    @property
    def deposed(self) -> bool:
        """A newer leader took over while this worker still thought it led."""
        return self.leader.deposed

    async def update_lag(self, highwaters: dict[tuple[str, int], int]) -> None:
        """Records behind the log end for the partitions this worker owns (no duplicates)."""
        tps = sorted(highwaters)
        applied = await self.store.applied_offsets(tps)
        self.metrics.lag.clear()
        for (topic, partition), offset in zip(tps, applied, strict=True):
            self.metrics.lag.labels(topic, str(partition)).set(
                max(0, highwaters[(topic, partition)] - offset - 1)
            )

    async def close(self) -> None:
        await self.store.close()


def _worker_metrics(registry: CollectorRegistry, settings: Settings) -> WorkerMetrics:
    """The process's counters, every known label set exported at 0 from the start."""
    metrics = WorkerMetrics.create(registry)
    core = core_status()
    Info(
        "kefu_core",
        "Which core this worker runs: compiled (mypyc) or pure Python, and why.",
        registry=registry,
    ).info({"kind": "compiled" if core.compiled else "pure", "reason": core.reason})
    native, why = native_status()
    Info(
        "kefu_outbox_encoder",
        "Which outbox encoder this worker runs: native (Rust, native/) or the Python reference, and why.",
        registry=registry,
    ).info({"kind": "native" if native else "reference", "reason": why})
    topics = settings.kafka.topics
    metrics.start_at_zero(
        {
            metrics.events: [(t, o) for t in (topics.messages, topics.orders) for o in OUTCOMES],
            metrics.rejected: [(reason.value,) for reason in Reason],
            metrics.alerts: [(a, s) for a in alerts.ALERTS for s in ("firing", "resolved")],
        }
    )
    return metrics


def _processors(
    settings: Settings,
    store: RedisStore,
    policies: PolicyBook,
    dead_letters: DeadLetterSink,
    metrics: WorkerMetrics,
) -> tuple[BatchProcessor, StatusProcessor]:
    """The buyer topics' processor and kefu.agents' one, judging records by the same limits."""
    processing, topics = settings.processing, settings.kafka.topics
    decoder = EventDecoder(
        future_tolerance_ms=processing.future_tolerance_seconds * 1000,
        max_record_bytes=processing.max_record_bytes,
    )
    processor = BatchProcessor(
        store.batches,
        policies,
        decoder,
        dead_letters,
        metrics,
        input_topics=(topics.messages, topics.orders),
        partitioner=worker_partitioner(settings.kafka.partitions),
    )
    status = StatusProcessor(
        store.status,
        policies,
        StatusDecoder(decoder.future_tolerance_ms, decoder.max_record_bytes),
        dead_letters,
        metrics,
    )
    return processor, status


def worker_partitioner(partitions: int) -> Partitioner:
    """The misrouting check's partitioner: the native murmur2 when the native build runs."""
    return Partitioner(partitions, native_murmur2())
