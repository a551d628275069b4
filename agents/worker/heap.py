"""How the worker's process uses the garbage collector: a pause of the event loop is a delay of
every number, so the collector walks as little as it must.

CPython's full collection walks every container object the process holds, however old. In a
worker that is tens of thousands of objects at start-up (Faust, aiokafka, aiohttp, the settings)
and, on the leader, the kept floor of every agent. Measured (/work/notes, issue 28): a full
collection every ~3 s, 170–380 ms each, found 0–80 objects of garbage, and was most of the
p99 visibility at 5,000 events/s.

- What exists once the worker runs lives as long as the process: `settle` moves it out of the
  collector's walk (`gc.freeze`). It is still freed by reference counting, but a reference
  cycle among those objects that dies later is kept to the end: aiokafka's first partition
  assignment (Assignment <-> TopicPartitionState), replaced at the first rebalance, a few KB.
  Bounded by what lived at the first batch; everything made after it is collected as before.
- Full collections come after `FULL_COLLECTION_EVERY` collections of the middle generation
  instead of CPython's 10 (and still only once the objects that survived since the last one
  are a quarter of the old ones, CPython's own rule). Cyclic garbage waits longer; it is rare
  here, and nothing else changes.
"""

from __future__ import annotations

import gc
import logging

FULL_COLLECTION_EVERY = 100

log = logging.getLogger(__name__)


def configure() -> None:
    """At process start, before the worker's objects exist."""
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)


def settle() -> int:
    """Once the worker runs: everything alive now leaves the collector's walk. Returns how many
    objects that was."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("heap: %d start-up objects left out of garbage collection", frozen)
    return frozen
