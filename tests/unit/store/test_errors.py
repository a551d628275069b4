"""Which Redis errors are an outage (retry through it) and which are a bug (stop, say which).

Error replies are built by redis-py's own parser from the reply text a server sends, so the
classes and codes are those a worker meets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from redis._parsers.base import BaseParser
from redis.exceptions import (
    ClusterDownError,
    ConnectionError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TimeoutError,
)

from agents.core.policy import PolicyBook
from agents.exposure.metrics import WorkerMetrics
from agents.processing.batch import BatchProcessor
from agents.store.errors import (
    STORE_ERRORS,
    StoreAccessError,
    StoreBugError,
    is_bug,
    raise_if_fatal,
)
from agents.store.memory import MemoryPartitionStore
from agents.store.protocols import PartitionCommit
from agents.store.scripts import PRELUDE, Lua, ScriptCall, run_scripts
from config.settings import Settings
from streams.wire.decoding import EventDecoder
from tests.kafka_records import simulated

TRANSIENT_REPLIES = (
    "NOSCRIPT No matching script. Please use EVAL.",
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
    "LOADING Redis is loading the dataset in memory",
    "READONLY You can't write against a read only replica.",
    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
    "NOREPLICAS Not enough good replicas to write.",
    "OOM command not allowed when used memory > 'maxmemory'.",
    "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk.",
    "MOVED 3999 127.0.0.1:6381",
    "ASK 3999 127.0.0.1:6381",
    "TRYAGAIN Multiple keys request during rehashing of slot",
    "CLUSTERDOWN The cluster is down",
    "UNBLOCKED client unblocked via CLIENT UNBLOCK",
    # A cluster resharding the agent's slot: apply_agent.lua meets it before its first write.
    "ERR Script attempted to access a non local key in a cluster node script: 5a3c, on @user_script:218.",
)
BUG_REPLIES = (
    "ERR user_script:1: too many results to unpack script: 9dce8344, on @user_script:1.",
    "ERR wrong number of arguments for 'hset' command script: ad87600a, on @user_script:9.",
    "BADINPUT share 2: added member script: 0f952094, on @user_script:14.",
    "WRONGTYPE Operation against a key holding the wrong kind of value",
    "ERR syntax error",
    "CROSSSLOT Keys in request don't hash to the same slot",
    "EXECABORT Transaction discarded because of previous errors.",
    "a script's own error reply, with no code",
)


def reply(text: str) -> RedisError:
    """The exception redis-py raises for the error reply `-<text>` (LOADING and WRONGPASS
    come as ConnectionErrors, the rest as ResponseErrors)."""
    error = BaseParser.parse_error(text)
    assert isinstance(error, RedisError)
    return error


@pytest.mark.parametrize("text", TRANSIENT_REPLIES)
def test_a_reply_that_heals_by_itself_is_retried(text: str) -> None:
    error = reply(text)
    assert not is_bug(error)
    raise_if_fatal(error)  # returns: the batch is retried


@pytest.mark.parametrize("text", BUG_REPLIES)
def test_a_reply_that_fails_again_on_every_retry_is_a_bug(text: str) -> None:
    error = reply(text)
    assert is_bug(error)
    with pytest.raises(StoreBugError, match="not an outage") as raised:
        raise_if_fatal(error)
    assert str(error) in str(raised.value) and raised.value.__cause__ is error
    assert not isinstance(raised.value, STORE_ERRORS)  # no `except STORE_ERRORS` retries it


@pytest.mark.parametrize(
    "error",
    [
        ConnectionError("Connection refused"),
        TimeoutError("Timeout reading"),
        OSError(113, "No route to host"),
    ],
)
def test_an_outage_is_not_a_bug(error: Exception) -> None:
    assert not is_bug(error)
    raise_if_fatal(error)


def test_a_cluster_error_raised_by_the_client_itself_is_transient() -> None:
    error = ClusterDownError("The cluster is down")  # no reply code: the client gave up on its own
    assert not is_bug(error)


def test_the_cluster_clients_own_errors_are_an_outage_when_no_node_answers_else_a_bug() -> None:
    """They are no RedisError: retried as an outage, a call the client refuses to send (keys of
    two slots) would be sent again for ever; raised as they came, they were tracebacks."""
    unreachable = RedisClusterException(
        "Redis Cluster cannot be connected. Please provide at least one reachable node: Timeout"
    )
    assert isinstance(unreachable, STORE_ERRORS) and not is_bug(unreachable)
    raise_if_fatal(unreachable)
    cross_slot = RedisClusterException("EVALSHA - all keys must map to the same key slot")
    assert is_bug(cross_slot)
    with pytest.raises(StoreBugError):
        raise_if_fatal(cross_slot)


@pytest.mark.parametrize(
    "text",
    ["WRONGPASS invalid username-password pair or user is disabled.", "NOPERM this user has no permissions"],
)
def test_an_access_problem_keeps_its_own_class(text: str) -> None:
    error = reply(text)
    assert not is_bug(error)
    with pytest.raises(StoreAccessError):
        raise_if_fatal(error)


class FakePipeline:
    """Answers each EVALSHA with the next prepared result (an exception stands for an error reply)."""

    def __init__(self, client: FakeClient) -> None:
        self.client = client
        self.sent: list[tuple[Any, ...]] = []

    async def __aenter__(self) -> FakePipeline:
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        return None

    def execute_command(self, *args: Any) -> None:
        self.sent.append(args)

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        assert not raise_on_error
        return [self.client.answers.pop(0) for _ in self.sent]


class FakeClient:
    def __init__(self, answers: Sequence[Any]) -> None:
        self.answers = list(answers)
        self.loaded: list[str] = []

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        return FakePipeline(self)

    async def script_load(self, text: str) -> str:
        self.loaded.append(text)
        return "sha"


APPLY = Lua("apply_agent.lua")
TOUCH = Lua("touch_index.lua")
PRELUDE_LINES = PRELUDE.count("\n")


def run(client: FakeClient, calls: list[ScriptCall]) -> list[Any]:
    return asyncio.run(run_scripts(client, calls))  # type: ignore[arg-type]


def test_a_failing_script_stops_as_a_bug_naming_the_script_and_its_own_line() -> None:
    failed = reply(f"ERR user_script:{PRELUDE_LINES + 21}: too many results to unpack script: 0f95")
    client = FakeClient([1, failed])
    with pytest.raises(StoreBugError) as raised:
        run(client, [ScriptCall(TOUCH, ["i"], []), ScriptCall(APPLY, ["a"], [])])
    assert "the Redis script apply_agent.lua failed: apply_agent.lua:21: too many results" in str(
        raised.value
    )


def test_a_bug_is_raised_before_an_outage_elsewhere_in_the_pipeline() -> None:
    client = FakeClient(
        [reply("READONLY You can't write against a read only replica."), reply("BADINPUT odd")]
    )
    with pytest.raises(StoreBugError, match=r"apply_agent\.lua failed: BADINPUT odd"):
        run(client, [ScriptCall(TOUCH, ["i"], []), ScriptCall(APPLY, ["a"], [])])


def test_a_transient_reply_is_raised_as_it_came_for_the_retry() -> None:
    busy = reply("BUSY Redis is busy running a script.")
    with pytest.raises(ResponseError) as raised:
        run(FakeClient([busy]), [ScriptCall(APPLY, ["a"], [])])
    assert raised.value is busy


def test_noscript_is_healed_and_only_those_calls_are_sent_again() -> None:
    client = FakeClient([1, reply("NOSCRIPT No matching script."), 2])
    assert run(client, [ScriptCall(TOUCH, ["i"], []), ScriptCall(APPLY, ["a"], [])]) == [1, 2]
    assert client.loaded == [APPLY.text]


def test_every_script_starts_with_the_prelude() -> None:
    assert APPLY.text.startswith(PRELUDE) and "call_chunked" in PRELUDE
    assert APPLY.where(f"on @user_script:{PRELUDE_LINES}.") == f"on @prelude.lua:{PRELUDE_LINES - 1}."


class FailingStore(MemoryPartitionStore):
    """Commits fail with the prepared errors first."""

    def __init__(self, errors: list[Exception]) -> None:
        super().__init__()
        self.errors = errors
        self.attempts = 0

    async def commit(self, commits: Sequence[PartitionCommit]) -> set[int]:
        self.attempts += 1
        if self.errors:
            raise self.errors.pop(0)
        return await super().commit(commits)


NOW = 1_764_000_000_000
TOPICS = ("c.messages", "c.orders")
RECORDS = simulated(200, NOW, 2, TOPICS)


def processor(store: FailingStore) -> BatchProcessor:
    async def no_dead_letters(_: object) -> None:
        return None

    return BatchProcessor(
        store,
        PolicyBook(Settings()),
        EventDecoder(),
        no_dead_letters,
        WorkerMetrics.create(CollectorRegistry()),
        clock=lambda: NOW,
        input_topics=TOPICS,
    )


def test_a_batch_meeting_a_bug_stops_at_once_instead_of_retrying_forever() -> None:
    store = FailingStore([reply("WRONGTYPE Operation against a key holding the wrong kind of value")])
    worker = processor(store)
    with pytest.raises(StoreBugError, match="WRONGTYPE"):
        asyncio.run(worker.process_until_done(RECORDS))
    assert store.attempts == 1 and worker.metrics.redis_errors._value.get() == 0
    assert store.offsets == {}


def test_a_batch_meeting_a_failover_is_retried_through_it() -> None:
    store = FailingStore([reply("READONLY You can't write against a read only replica.")])
    worker = processor(store)
    asyncio.run(worker.process_until_done(RECORDS))
    assert store.attempts == 2 and worker.metrics.redis_errors._value.get() == 1
    assert store.offsets
