"""A Kafka record as the processing sees it: the wire's shape, no framework attached."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class KafkaRecord(Protocol):
    """What processing reads of a record. aiokafka's own records have it, so the worker hands
    each fetch over as fetched, without a copy per record."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class Record:
    """A record made by kefu-pulse itself (rebuild, tests, benchmarks)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
