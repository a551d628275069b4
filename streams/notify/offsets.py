"""Which offsets `notify` may commit: a record's offset only once its notices are done.

A record is done when every channel's notice was sent, dead-lettered or dropped on purpose.
Kafka's committed offset is "everything before this is done", so per partition it is the
first offset not yet done; a record held for quiet hours holds back the ones after it, and a
restart reads those again (the ledger drops what was already sent).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiokafka import TopicPartition


@dataclass
class _Partition:
    open: set[int] = field(default_factory=set)  # read, not done yet
    read_up_to: int = -1  # the last offset read
    committed: int = -1  # the next offset as last committed


class OffsetTracker:
    def __init__(self) -> None:
        self._partitions: dict[TopicPartition, _Partition] = {}

    def read(self, tp: TopicPartition, offset: int) -> None:
        part = self._partitions.setdefault(tp, _Partition())
        part.open.add(offset)
        part.read_up_to = max(part.read_up_to, offset)

    def done(self, tp: TopicPartition, offset: int) -> None:
        part = self._partitions.get(tp)
        if part is not None:
            part.open.discard(offset)

    def forget(self, partitions: set[TopicPartition]) -> None:
        """Partitions this process no longer owns: their new owner reads from the commit."""
        for tp in partitions:
            self._partitions.pop(tp, None)

    def committable(self) -> dict[TopicPartition, int]:
        """The next offset to commit per partition, where it moved since the last commit."""
        out: dict[TopicPartition, int] = {}
        for tp, part in self._partitions.items():
            upto = min(part.open) if part.open else part.read_up_to + 1
            if upto > part.committed and upto > 0:
                out[tp] = upto
        return out

    def committed(self, offsets: dict[TopicPartition, int]) -> None:
        for tp, offset in offsets.items():
            if tp in self._partitions:
                self._partitions[tp].committed = offset

    def pending(self) -> int:
        return sum(len(part.open) for part in self._partitions.values())
