"""Describing the consumer group waits out a coordinator that a fresh broker has not elected yet:
`check` and `rebuild` on a stack that has just started must not fail on it."""

from __future__ import annotations

from typing import Any

import pytest
from kafka.errors import CoordinatorNotAvailableError

from streams.wire import consumer_group
from streams.wire.consumer_group import describe_group


class FreshBroker:
    """An admin client whose broker elects the group coordinator after `not_yet` answers."""

    def __init__(self, not_yet: int) -> None:
        self.not_yet = not_yet
        self.asked = 0

    def describe_groups(self, groups: list[str]) -> dict[str, Any]:
        self.asked += 1
        if self.asked <= self.not_yet:
            raise CoordinatorNotAvailableError("FindCoordinatorResponse error")
        return {groups[0]: {"group_state": "Empty", "members": []}}


def test_the_group_is_described_once_the_coordinator_is_elected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consumer_group.time, "sleep", lambda seconds: None)
    broker = FreshBroker(not_yet=3)
    assert describe_group(broker, "g") == {"g": {"group_state": "Empty", "members": []}}
    assert broker.asked == 4


def test_a_coordinator_that_never_comes_is_the_error_after_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consumer_group, "COORDINATOR_WAIT_S", -1.0)
    with pytest.raises(CoordinatorNotAvailableError):
        describe_group(FreshBroker(not_yet=1), "g")


def test_check_describes_its_group_through_the_wait() -> None:
    from streams.commands import check

    assert check.describe_group is describe_group
