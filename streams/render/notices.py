"""What a group robot says: one alert, its resolution, a folded burst, a test message.

A `Notice` is the text of one robot message in two variants, markdown and plain, Chinese
first with a short English line after; robots.py puts it into each robot's body and adds
the robot's own @-mention syntax for `mentions`. Names come from the config, else the id;
seconds are rounded to whole seconds, as a group chat reads them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from urllib.parse import quote

from config.settings import Settings
from streams.contract.alerts import FIRST_RESPONSE, AlertEvent

# What a chat's markdown acts on, shown as its full-width twin: an agent id (any 1-128 characters
# of kefu.messages) or an Alertmanager label planted links (`[…](…)`), a WeCom `<@all>`, Feishu's
# `<at …>` and bold fake headlines in the leads' chat. Line breaks would plant whole fake lines.
_CHAT_ACTIVE = str.maketrans({"[": "［", "]": "］", "<": "＜", ">": "＞", "*": "＊", "`": "｀"})
_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")

HEAD = "【客服预警】"
TEST_HEAD = "【客服预警 · 测试】"
RULE_HEAD = "【kefu-pulse 告警】"


@dataclass(frozen=True, slots=True)
class Notice:
    shop: str  # the shop id: folding and channels are per shop
    title: str  # one line: the markdown title and the chat list's preview
    markdown: str  # DingTalk / WeCom / Feishu markdown (title line first)
    text: str  # the same in plain text
    mentions: tuple[str, ...] = ()  # phone numbers or user ids to @-mention
    link: str | None = None  # the floor page, already in markdown and text


@dataclass(frozen=True, slots=True)
class Names:
    """How a notice names a shop and an agent, and whom it @-mentions."""

    shop: str
    agent: str
    mention: str | None = None


def names_for(settings: Settings, shop_id: str, agent_id: str) -> Names:
    """The configured shop and agent names (else the ids) and the agent's `mention`."""
    shop = settings.shops.get(shop_id)
    agent = shop.agents.get(agent_id) if shop is not None else None
    return Names(
        shop=(shop.name if shop is not None and shop.name else shop_id),
        agent=(agent.name if agent is not None and agent.name else agent_id),
        mention=agent.mention if agent is not None else None,
    )


def floor_link(floor_url: str | None, shop_id: str) -> str | None:
    """`{floor_url}/floor?shop=ID`, or None when no floor URL is configured."""
    if not floor_url:
        return None
    return f"{floor_url.rstrip('/')}/floor?shop={quote(shop_id, safe='')}"


def whole_seconds(seconds: float) -> int:
    """Rounded half up (22.5 s → 23 s): `round` would make it 22."""
    return math.floor(seconds + 0.5)


def firing_notice(event: AlertEvent, names: Names, link: str | None = None) -> Notice:
    value, threshold = whole_seconds(event.value), whole_seconds(event.threshold)
    if event.alert == FIRST_RESPONSE:
        what = f"近 5 分钟平均首次响应 {value} 秒（阈值 {threshold} 秒）"
        english = f"5-minute first-response average {value} s (threshold {threshold} s)"
    else:
        what = f"买家已等待 {value} 秒（阈值 {threshold} 秒）"
        english = f"a buyer has waited {value} s (threshold {threshold} s)"
    return _notice(event.shop_id, f"{HEAD}{names.shop} · {names.agent}：{what}", english, names, link)


def resolved_notice(
    event: AlertEvent, names: Names, link: str | None = None, peak_seconds: float | None = None
) -> Notice:
    """`peak_seconds`: the longest wait of the episode, when the caller knows it (the resolved
    event carries the value at resolution, not the peak)."""
    if event.alert == FIRST_RESPONSE:
        value = whole_seconds(event.value)
        what, english = f"已恢复（近 5 分钟平均首次响应 {value} 秒）", f"resolved (average now {value} s)"
    elif peak_seconds is not None:
        peak = whole_seconds(peak_seconds)
        what, english = f"已恢复（最长等待 {peak} 秒）", f"resolved (longest wait {peak} s)"
    else:
        what, english = "已恢复", "resolved"
    return _notice(event.shop_id, f"{HEAD}{names.shop} · {names.agent}：{what}", english, names, link)


def rule_notice(event: AlertEvent, summary: str, names: Names, link: str | None = None) -> Notice:
    """A Prometheus rule's alert through Alertmanager, in its annotation `summary`:
    `【kefu-pulse 告警】旗舰店 · KefuConsumerLagHigh：…`; a part with no name (worker health
    has no shop) is left out."""
    where = " · ".join(part for part in (names.shop, names.agent, event.alert) if part)
    if event.state == "firing":
        what, english = summary or "告警触发", f"{event.alert} firing"
    else:
        what, english = (f"已恢复（{summary}）" if summary else "已恢复"), f"{event.alert} resolved"
    return _notice(event.shop_id, f"{RULE_HEAD}{where}：{what}", english, names, link)


def summary_notice(
    shop: str,
    shop_name: str,
    rows: list[tuple[str, float]],
    threshold: float,
    link: str | None = None,
    mentions: tuple[str, ...] = (),
) -> Notice:
    """A burst folded into one message: `12 位客服有买家等待超过 15 秒：小美 23 秒、…`, naming
    every agent of `rows` (agent name, seconds), longest wait first."""
    ordered = sorted(rows, key=lambda row: (-row[1], row[0]))
    limit = whole_seconds(threshold)
    headline = f"{len(ordered)} 位客服有买家等待超过 {limit} 秒"
    listing = "、".join(f"{name} {whole_seconds(seconds)} 秒" for name, seconds in ordered)
    english = f"{len(ordered)} agents have a buyer waiting over {limit} s"
    return assemble(
        shop, f"{HEAD}{shop_name} · {headline}", f"{headline}：{listing}", english, mentions, link
    )


def test_notice(shop: str, shop_name: str, link: str | None = None) -> Notice:
    title = f"{TEST_HEAD}{shop_name}：测试消息，收到即表示本群机器人配置正确"
    english = "test message from kefu-pulse: this group's robot is configured correctly"
    return assemble(shop, title, None, english, (), link)


# The name starts with `test`: pytest would collect it from every test module that imports it.
test_notice.__test__ = False  # type: ignore[attr-defined]


def chat_safe(text: str) -> str:
    """One line, with nothing a chat's markdown acts on (`_CHAT_ACTIVE`)."""
    return _LINE_BREAKS.sub(" ", text).translate(_CHAT_ACTIVE)


def _notice(shop: str, title: str, english: str, names: Names, link: str | None) -> Notice:
    mentions = (names.mention,) if names.mention else ()
    return assemble(shop, title, None, english, mentions, link)


def assemble(
    shop: str, title: str, detail: str | None, english: str, mentions: tuple[str, ...], link: str | None
) -> Notice:
    """Title first (bold in markdown), the detail, the English line, the link. What the title,
    detail and English line quote (ids, names, labels) is shown as written, never acted on."""
    title, english = chat_safe(title), chat_safe(english)
    detail = chat_safe(detail) if detail else detail
    markdown_lines = [f"**{title}**"]
    text_lines = [title]
    if detail:
        markdown_lines.append(detail)
        text_lines.append(detail)
    markdown_lines.append(f"> {english}")
    text_lines.append(english)
    if link:
        markdown_lines.append(f"[打开现场大屏 / open the floor]({link})")
        text_lines.append(f"现场大屏 / floor: {link}")
    return Notice(
        shop=shop,
        title=title,
        markdown="\n\n".join(markdown_lines),
        text="\n".join(text_lines),
        mentions=mentions,
        link=link,
    )
