"""How `replay` routes each recorded line (events.md's topics and keys), and what it skips."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from config.settings import Settings
from streams.simulation.replay import count_lines, iter_lines, route_line

SETTINGS = Settings()
TOPICS = SETTINGS.kafka.topics


def test_every_input_event_goes_to_its_topic_under_its_key() -> None:
    message = {"event_id": "m1", "type": "message", "shop_id": "s1", "buyer_id": "b1"}
    order = {"event_id": "o1", "type": "order", "shop_id": "s1", "buyer_id": "b1"}
    status = {
        "event_id": "st1",
        "type": "agent_status",
        "shop_id": "s1",
        "agent_id": "s1:a",
        "status": "online",
    }
    routed = [route_line(json.dumps(event), SETTINGS) for event in (message, order, status)]
    assert [(r.topic, r.key) for r in routed] == [
        (TOPICS.messages, b"s1:b1"),
        (TOPICS.orders, b"s1:b1"),
        (TOPICS.agents, b"s1:s1:a"),  # v3: kefu.agents, keyed shop_id:agent_id
    ]
    record = route_line(json.dumps({"key": "s1:s1:a", "value": status}), SETTINGS)
    assert (record.topic, record.key) == (TOPICS.agents, b"s1:s1:a")


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ('{"key": "k", "value": {}, "topic": 7}', "is not an input topic"),
        ('{"key": "k", "value": {}, "topic": "kefu.deadletter"}', "is not an input topic"),
        ('{"type": "agent_status", "shop_id": "s1"}', "no string shop_id and agent_id"),
        (
            '{"type": "message", "shop_id": "s1", "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
            "nested too deeply",
        ),
    ],
)
def test_a_line_that_cannot_be_routed_is_a_bad_line_not_the_end_of_the_run(line: str, why: str) -> None:
    """A number as the topic failed in producer.send, and deep nesting raised RecursionError:
    either ended the whole replay, with no line number."""
    with pytest.raises(ValueError, match=why):
        route_line(line, SETTINGS)


def test_a_pipe_is_read_once_and_counted_never(tmp_path: Path) -> None:
    """`replay <(zcat day.jsonl.gz)`: counting the lines for the progress bar read the pipe to
    its end, and the replay then produced nothing, saying so as a success."""
    path = tmp_path / "day.jsonl"
    path.write_text('{"type": "message", "shop_id": "s1", "buyer_id": "b1"}\n' * 2)
    assert count_lines([path]) == 2
    read, write = os.pipe()
    os.write(write, path.read_bytes())
    os.close(write)
    piped = Path(f"/dev/fd/{read}")
    try:
        assert count_lines([piped]) is None
        assert len(list(iter_lines([piped]))) == 2
    finally:
        os.close(read)
