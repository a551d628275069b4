"""`rebuild --jobs N` (issue 28) leaves Redis exactly as `rebuild` does, field by field.

Three shops' traffic with ratings, purchases, refunds, malformed records and agents' shifts on
`kefu.agents`, on 4 partitions: `rebuild`, every kp:* key read whole; then `rebuild --jobs 3`
(partitions 0+3, 1 and 2), whose snapshot must equal the first. Capping, failures and Ctrl-C:
tests/unit/commands/test_rebuild_jobs.py.

What a snapshot leaves out, because it differs between two plain `rebuild`s too:
- every TTL: expiries are counted from the wall clock of the batch that wrote them;
- the order of a buyer state's `seen` digests (states are compared decoded, `seen` as a mapping):
  a buyer's messages and orders are on two topics, and where fetches cut them decides which of
  the two is applied first, so the digests are inserted in another order;
- counter fields at 0 (a field at 0 reads as no field): +1 in one batch and -1 in a later one
  leave the field at 0, in one batch nothing;
- the scores of `kp:agents:{shop}` and `kp:shops` (their members are kept): "last seen" is the
  wall clock of the batch that saw the agent or shop, not an event time;
- the value of `kp:{P}:outbox` (its presence is kept): the deltas of partition N's last commit,
  which depend on where batches were cut, applied already;
- the values of `kp:{A}:a` (its fields, the partitions, are kept): the position of the last
  outbox entry of N that touched the agent, again a batch boundary;
- the ids in `kp:{P}:commits` (its presence is kept): each is one commit of the process that
  made it, and batches are cut differently;
- the leader's change signals count writes, so they count batches: the values of the day log
  `kp:{A}:dv` (its fields, the days written, are kept), the scores of the minute log `kp:{A}:mv`
  and of an agents index's change log `kp:agents:{shop}:chg` (their members are kept), and the
  change log's counter and birth `…:ver` (its fields).
- `kp:rebuild:lettered`, which a rebuild's delete_state writes (how far the last readers sent
  dead letters): the second rebuild finds the first's offsets, the first finds none.
No `kp:leader` or `kp:alerts` exists: no worker runs here.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from typing import Any, cast

import redis

from agents.store.state_codec import decode_state
from streams.simulation.traffic import SimRecord, TrafficModel, TrafficShape
from streams.wire.decoding import EventDecoder, Rejection
from tests.integration.differential import purchases
from tests.integration.harness import Deployment

SUMMARY = re.compile(r"^rebuild: applied (\d+) records in [\d.]+s \([\d,]+ events/s\) with (\d+) jobs$")
WALL_CLOCK_SCORES = re.compile(rb"^kp:(agents:\{.*\}(:chg)?|shops)$")
BATCH_BOUNDARY_SCORES = re.compile(rb"^kp:\{[^}]*\}:mv$")
BATCH_BOUNDARY_VALUE = re.compile(rb"^kp:\{[^}]*\}:outbox$")
# The logs of commit and raise ids: which processor made them differs with the jobs.
COMMIT_LOG = re.compile(rb"^kp:\{[^}]*\}:(commits|raises:.*)$")
BATCH_BOUNDARY_FIELD_VALUES = re.compile(rb"^kp:(\{[^}]*\}:(a|dv)|agents:\{.*\}:ver)$")
BUYER = re.compile(rb"^kp:\{p[^}]*\}:b:")


def scenario() -> list[SimRecord]:
    # Half an hour ago: the minute and second buckets (kept 1 h 5 min) are written too.
    start = time.time_ns() // 1_000_000 - 30 * 60_000
    shape = TrafficShape(shops=3, agents=6, rate=200, rating_share=0.2, agent_shifts=True)
    records = list(itertools.islice(TrafficModel(shape, seed=28).records(start), 12_000))
    return records + purchases(records)


def snapshot(client: redis.Redis) -> dict[bytes, Any]:
    """Every kp:* key's whole value by its type, minus what legitimately differs (module doc)."""
    state: dict[bytes, Any] = {}
    for key in client.scan_iter("kp:*", count=1000):
        if key == b"kp:rebuild:lettered":
            continue
        kind = cast(bytes, client.type(key)).decode()
        if kind == "string":
            state[key] = string_value(key, cast(bytes, client.get(key)))
        elif kind == "hash":
            fields = {field: value for field, value in client.hgetall(key).items() if value != b"0"}
            state[key] = sorted(fields) if BATCH_BOUNDARY_FIELD_VALUES.match(key) else fields
        elif kind == "zset":
            members = cast(list[tuple[bytes, float]], client.zrange(key, 0, -1, withscores=True))
            scores_differ = WALL_CLOCK_SCORES.match(key) or BATCH_BOUNDARY_SCORES.match(key)
            state[key] = sorted(m for m, _ in members) if scores_differ else members
        elif kind == "list" and COMMIT_LOG.match(key):
            state[key] = "present"
        else:
            raise AssertionError(f"{key!r} is a {kind}: the snapshot does not know that type yet")
    return state


def string_value(key: bytes, value: bytes | None) -> Any:
    if BATCH_BOUNDARY_VALUE.match(key):
        return "present"
    return decode_state(value) if BUYER.match(key) else value


def kinds(state: dict[bytes, Any]) -> dict[str, int]:
    """How many keys of each family (the segment after the hash tag: b, d, m, s, x, w, st, off…)."""
    counts: dict[str, int] = {}
    for key in state:
        text = key.decode()
        family = text.rsplit("}", 1)[-1].lstrip(":").split(":")[0] if "}" in text else ""
        family = family or text.split(":")[1]  # kp:agents:{shop}, kp:shops
        counts[family] = counts.get(family, 0) + 1
    return counts


def differences(expected: dict[bytes, Any], found: dict[bytes, Any]) -> list[str]:
    missing = sorted(expected.keys() - found.keys())
    extra = sorted(found.keys() - expected.keys())
    changed = sorted(k for k in expected.keys() & found.keys() if expected[k] != found[k])
    return (
        [f"missing {k!r}" for k in missing[:5]]
        + [f"extra {k!r}" for k in extra[:5]]
        + [f"{k!r}: {expected[k]!r} != {found[k]!r}"[:300] for k in changed[:5]]
        + [f"({len(missing)} missing, {len(extra)} extra, {len(changed)} changed of {len(expected)})"]
    )


def summary(stderr: str) -> tuple[int, int]:
    lines = [found for line in stderr.splitlines() if (found := SUMMARY.match(line.strip()))]
    assert len(lines) == 1, stderr
    return int(lines[0].group(1)), int(lines[0].group(2))


def restored(stderr: str) -> str:
    return next(line for line in stderr.splitlines() if "history restored from" in line)


def _where(record: Any) -> tuple[str, int, int]:
    """The record a dead letter is about."""
    letter = json.loads(record.value)
    return letter["topic"], letter["partition"], letter["offset"]


def test_rebuild_in_jobs_equals_rebuild_field_by_field(deployment: Deployment) -> None:
    deployment.create_topics()
    records = scenario()
    decoder = EventDecoder()
    now_ms = time.time_ns() // 1_000_000
    rejected = [
        r
        for r in records
        if r.kind != "agents" and isinstance(decoder.decode(r.value, r.key, now_ms), Rejection)
    ]
    assert rejected, "the scenario has malformed records for the rebuilds to reject"
    last = deployment.produce((r.kind, r.key, r.value) for r in records)
    produced = sum(offset + 1 for offset in last.values())
    assert {topic for topic, _ in last} == {deployment.topics[k] for k in ("messages", "orders", "agents")}

    one = deployment.rebuild()
    assert f"rebuild: applied {produced} records in" in one.stderr, one.stderr
    reference = snapshot(deployment.redis)
    families = kinds(reference)
    for family in ("b", "off", "outbox", "d", "m", "s", "x", "w", "a", "st", "sid", "h", "agents", "shops"):
        assert families.get(family, 0) > 0, f"the scenario wrote no {family!r} key: {families}"

    deployment.redis.set("kp:stale", "from before")  # the parent deletes it once, before the jobs
    three = deployment.cli("rebuild", "--jobs", "3", timeout=300)
    assert three.returncode == 0, three.stderr
    found = snapshot(deployment.redis)
    assert found == reference, "\n".join(differences(reference, found))
    assert summary(three.stderr) == (produced, 3)
    # No worker read the scenario's records: the first rebuild sent each malformed one's dead
    # letter, once; the second replayed them all again and sent none (delete_state noted how far
    # the first had read: tests/integration/test_rebuild_dead_letters.py has the workers' side).
    letters = deployment.read_topic("deadletter", expected=len(rejected) + 1, timeout=5)
    about = [_where(letter) for letter in letters]
    assert len(about) == len(set(about)) == len(rejected)
    assert restored(three.stderr) == restored(one.stderr)
    assert "rebuild-job " not in three.stdout + three.stderr  # the jobs' reports stay between processes
