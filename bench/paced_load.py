"""A steady offered load that one Python thread cannot give: kcat (librdkafka) processes fed at
a paced rate.

Simulating a record costs ~40 µs and kafka-python's `send` about as much, so one Python thread
offers ~5–10k events/s, not the 20k the issue's latency phase asks for. Here the records are
simulated before the phase starts, and during it a pacing thread only writes their due lines
into one `kcat -P` per topic (murmur2, as events.md asks of producers), a few microseconds each.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from streams.simulation.traffic import TrafficModel, TrafficShape

KCAT = shutil.which("kcat")
TICK_S = 0.005  # the pacing thread's step: lines due by now are written every 5 ms


def phase_ids(seed: int) -> str:
    """The prefix of a phase's event and order ids: another phase's (or the dataset's) ids are
    its own, and event ids are unique per event (events.md), order ids per shop."""
    return f"p{seed:08x}-"


@dataclass(slots=True)
class PacedLoad:
    """`rate` events/s of simulated traffic for up to `seconds`, into `topics` (kind -> topic)."""

    bootstrap: str
    topics: Mapping[str, str]
    rate: int
    seconds: float
    seed: int  # the phase's own: another phase's buyers and event ids would only be duplicates
    sent: int = 0
    load_seconds: float = 0.0
    _lines: list[tuple[str, bytes]] = field(default_factory=list)

    def prepare(self) -> None:
        """Simulate every record of the phase now, so that the phase itself only writes lines."""
        shape = TrafficShape(shops=5, agents=12, rate=self.rate)
        stream = TrafficModel(shape, seed=self.seed, id_prefix=phase_ids(self.seed)).records(
            time.time_ns() // 1_000_000
        )
        wanted = int(self.rate * self.seconds * 1.1) + 1000
        self._lines = [
            (r.kind, r.key + b"\t" + r.value + b"\n")
            for r in itertools.islice(stream, wanted)
            if r.kind in self.topics
        ]

    def run(self, stop: threading.Event) -> None:
        """Write the due lines until `stop` (or the prepared records run out); notes what it sent."""
        assert KCAT is not None
        producers = {kind: self._kcat(topic) for kind, topic in self.topics.items()}
        started = time.perf_counter()
        try:
            while not stop.is_set() and self.sent < len(self._lines):
                due = min(int((time.perf_counter() - started) * self.rate), len(self._lines))
                chunks: dict[str, list[bytes]] = {}
                for kind, line in self._lines[self.sent : due]:
                    chunks.setdefault(kind, []).append(line)
                for kind, lines in chunks.items():
                    stdin = producers[kind].stdin
                    assert stdin is not None
                    stdin.write(b"".join(lines))
                    stdin.flush()
                self.sent = max(self.sent, due)
                time.sleep(TICK_S)
        finally:
            self.load_seconds = time.perf_counter() - started
            for process in producers.values():
                assert process.stdin is not None
                process.stdin.close()
            for process in producers.values():
                process.wait(timeout=60)

    def _kcat(self, topic: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                str(KCAT), "-P", "-b", self.bootstrap, "-t", topic, "-K", "\t",
                "-X", "partitioner=murmur2_random", "-X", "linger.ms=2", "-q",
            ],
            stdin=subprocess.PIPE,
        )  # fmt: skip
