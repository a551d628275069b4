"""At most `per_minute` messages a minute to one robot: a burst becomes one summary.

`Budget` is the sliding minute of one (shop, channel): the times of the messages the robot
accepted. `plan` turns what is due into messages: each alert its own message while the budget
keeps one in reserve, else one summary naming every agent of the burst (so 5,000 alerts are
a handful of messages a minute, never thousands).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from streams.contract.alerts import FIRST_RESPONSE, WAITING, AlertEvent
from streams.render.notices import HEAD, Names, Notice, assemble, chat_safe, summary_notice

MINUTE_MS = 60_000
ROBOT_PER_MINUTE = 20  # DingTalk, WeCom and Feishu group robots all stop at about 20 a minute

T = TypeVar("T")


class Budget:
    """The messages planned for one robot in the last minute, and when the next one may go. One
    per robot, shared by every (shop, channel) that posts to it: shops without a `notify:` of
    their own all post to the defaults' robot, whose limit is its own, not each shop's. A
    channel spends it as it plans (before any await), so the next channel to plan sees what is
    left; a message that ends in a dead letter spent its place too."""

    def __init__(self, per_minute: int = ROBOT_PER_MINUTE) -> None:
        self.per_minute = per_minute
        self._sent: deque[int] = deque()

    def remaining(self, now_ms: int) -> int:
        while self._sent and self._sent[0] <= now_ms - MINUTE_MS:
            self._sent.popleft()
        return self.per_minute - len(self._sent)

    def next_free_ms(self, now_ms: int) -> int:
        """When `remaining` is next above zero (now, if it is already)."""
        if self.remaining(now_ms) > 0:
            return now_ms
        return self._sent[0] + MINUTE_MS

    def spend(self, now_ms: int) -> None:
        self._sent.append(now_ms)


@dataclass(frozen=True, slots=True)
class Due(Generic[T]):
    """An alert due on a channel, with what the caller tracks it by (its Kafka record)."""

    event: AlertEvent
    ticket: T
    held: bool = False  # held through quiet hours


@dataclass(frozen=True, slots=True)
class Message(Generic[T]):
    notice: Notice
    covers: tuple[Due[T], ...]


Describe = Callable[[AlertEvent], Notice]
NamesOf = Callable[[str, str], Names]


# The longest message each robot takes, in bytes, with room for the title and the link
# (DingTalk 20,000; WeCom 4,096 of markdown but 2,048 of text; Feishu's body about 30,000).
MESSAGE_BYTES = {"dingtalk": 16_000, "wecom": 1_600, "feishu": 16_000, "webhook": 60_000}
_OVERHEAD_BYTES = 600


def plan(
    due: Sequence[Due[T]],
    remaining: int,
    describe: Describe,
    names_of: NamesOf,
    link: str | None,
    max_bytes: int = MESSAGE_BYTES["webhook"],
) -> tuple[list[Message[T]], list[Due[T]]]:
    """(messages, left over) for everything `due` on one channel, with `remaining` messages
    left this minute: one each while that leaves one spare, else summaries of `max_bytes` at
    most, as many as the minute allows; the rest waits for the next minute."""
    if not due or remaining <= 0:
        return [], list(due)
    if len(due) < remaining:
        return [Message(describe(item.event), (item,)) for item in due], []
    chunks = _chunks(due, names_of, max_bytes)
    messages = [Message(summarize(chunk, names_of, link), tuple(chunk)) for chunk in chunks[:remaining]]
    return messages, [item for chunk in chunks[remaining:] for item in chunk]


def _chunks(due: Sequence[Due[T]], names_of: NamesOf, max_bytes: int) -> list[list[Due[T]]]:
    """`due` cut so that each summary's listing stays under `max_bytes`."""
    chunks: list[list[Due[T]]] = [[]]
    size = _OVERHEAD_BYTES
    for item in due:
        cost = len(names_of(item.event.shop_id, item.event.agent_id).agent.encode()) + 12
        if chunks[-1] and size + cost > max_bytes:
            chunks.append([])
            size = _OVERHEAD_BYTES
        chunks[-1].append(item)
        size += cost
    return chunks


def summarize(due: Sequence[Due[T]], names_of: NamesOf, link: str | None) -> Notice:
    """One notice naming every agent with a firing alert (their longest value), and the
    agents whose alerts resolved, on a line of their own. It @-mentions nobody: a burst
    that paged everyone would be the flood folding is there to prevent."""
    shop = due[0].event.shop_id
    # Each agent's alert as its last event left it: a 预警 followed by its own 已恢复 (both held
    # for the minute's budget or quiet hours) is resolved, not a buyer still waiting.
    latest: dict[tuple[str, str], AlertEvent] = {}
    peaks: dict[tuple[str, str], float] = {}
    for item in due:
        pair = (names_of(shop, item.event.agent_id).agent, item.event.alert)
        latest.pop(pair, None)  # to the end: the order they last changed in
        latest[pair] = item.event
        if item.event.state == "firing":
            peaks[pair] = max(peaks.get(pair, 0.0), item.event.value)
        else:
            peaks.pop(pair, None)  # a later episode's wait is its own
    firing: dict[str, float] = {}
    other: dict[str, list[str]] = {}  # firing alerts that are no buyer's wait, by alert name
    resolved: list[str] = []
    thresholds: list[float] = []
    for (name, alert), event in latest.items():
        if event.state != "firing":
            resolved += [name] if name not in resolved else []
        elif alert == WAITING:
            firing[name] = max(firing.get(name, 0.0), peaks[(name, alert)])
            thresholds.append(event.threshold)
        elif name not in other.setdefault(alert, []):
            other[alert].append(name)
    shop_name = names_of(shop, "").shop
    if not firing and not other:
        return _resolved_only(shop, shop_name, resolved, link)
    if firing:
        notice = summary_notice(shop, shop_name, list(firing.items()), min(thresholds), link)
    else:
        notice = _others_only(shop, shop_name, sum(len(agents) for agents in other.values()), link)
    notice = _with_lines(
        notice,
        [f"{_kind(alert)}：{'、'.join(a or shop_name for a in agents)}" for alert, agents in other.items()],
    )
    return _with_resolved(notice, [name for name in resolved if name not in firing])


def _kind(alert: str) -> str:
    return "首次响应过慢 FirstResponseSlow" if alert == FIRST_RESPONSE else alert


def _others_only(shop: str, shop_name: str, count: int, link: str | None) -> Notice:
    return assemble(shop, f"{HEAD}{shop_name} · {count} 条告警", None, f"{count} alerts firing", (), link)


def _with_lines(notice: Notice, lines: list[str]) -> Notice:
    if not lines:
        return notice
    joined = "\n".join(chat_safe(line) for line in lines)
    return replace(notice, markdown=f"{notice.markdown}\n\n{joined}", text=f"{notice.text}\n{joined}")


def _resolved_only(shop: str, shop_name: str, names: list[str], link: str | None) -> Notice:
    title = f"{HEAD}{shop_name} · {len(names)} 位客服已恢复"
    return assemble(shop, title, "、".join(names), f"{len(names)} agents resolved", (), link)


def _with_resolved(notice: Notice, names: list[str]) -> Notice:
    if not names:
        return notice
    line = chat_safe(f"{len(names)} 位客服已恢复：{'、'.join(names)}")
    return replace(notice, markdown=f"{notice.markdown}\n\n{line}", text=f"{notice.text}\n{line}")


def without_resolved_pairs(due: Sequence[Due[T]]) -> tuple[list[Due[T]], list[Due[T]]]:
    """(kept, dropped): an alert that fired and resolved while both notices were held through
    quiet hours is news no more; both are dropped. Everything else is kept, in order."""
    held_firing = {item.event.alert_id for item in due if item.held and item.event.state == "firing"}
    held_resolved = {item.event.alert_id for item in due if item.held and item.event.state == "resolved"}
    over = held_firing & held_resolved
    kept = [item for item in due if item.event.alert_id not in over]
    dropped = [item for item in due if item.event.alert_id in over]
    return kept, dropped
