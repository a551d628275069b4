"""What the robots say: Chinese first, names from the config, whole seconds, the mention, the link."""

from __future__ import annotations

import msgspec
import pytest

from agents.core.alerts import AlertEvent as WrittenAlert
from config.settings import settings_from_yaml
from streams.contract.alerts import AlertEvent, BadAlert, decode_alert
from streams.render.notices import (
    Names,
    Notice,
    firing_notice,
    floor_link,
    names_for,
    resolved_notice,
    rule_notice,
    summary_notice,
    test_notice,
    whole_seconds,
)

SETTINGS = settings_from_yaml(
    """
shops:
  flagship:
    name: 旗舰店
    agents:
      "flagship:xiaomei": {name: 小美, mention: "13800000000"}
      "flagship:aqiang": {name: 阿强}
"""
)


def event(
    state: str = "firing", value: float = 22.6, agent: str = "flagship:xiaomei", **more: object
) -> AlertEvent:
    written = WrittenAlert(
        alert=str(more.get("alert", "BuyerWaitingTooLong")),
        state=state,  # type: ignore[arg-type]
        shop_id=str(more.get("shop", "flagship")),
        agent_id=agent,
        value=value,
        threshold=15.0,
        ts=1_764_900_000_000,
        alert_id=f"BuyerWaitingTooLong/flagship/{agent}/1764900000000",
    )
    return decode_alert(msgspec.json.encode(written.as_json()))


def test_the_wire_format_of_the_worker_decodes_whole() -> None:
    decoded = event("resolved", 3.5)
    assert (decoded.state, decoded.agent_id, decoded.value, decoded.ts) == (
        "resolved",
        "flagship:xiaomei",
        3.5,
        1_764_900_000_000,
    )


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"{}",
        b'{"alert":"A","state":"pending","shop_id":"s","agent_id":"a","value":1,'
        b'"threshold":1,"ts":1,"alert_id":"x"}',
        b"[]",
    ],
)
def test_a_record_that_is_no_alert_is_bad_alert_with_the_reason(data: bytes) -> None:
    with pytest.raises(BadAlert, match="not an alert event: "):
        decode_alert(data)


def test_firing_names_the_shop_and_agent_and_the_wait_in_whole_seconds() -> None:
    notice = firing_notice(event(), names_for(SETTINGS, "flagship", "flagship:xiaomei"))
    assert notice.title == "【客服预警】旗舰店 · 小美：买家已等待 23 秒（阈值 15 秒）"
    assert notice.text.startswith(notice.title + "\n")
    assert notice.title in notice.markdown
    assert notice.mentions == ("13800000000",)
    assert (notice.shop, notice.link) == ("flagship", None)
    assert "floor" not in notice.text


def test_names_fall_back_to_the_ids_and_an_agent_without_mention_mentions_nobody() -> None:
    unknown = firing_notice(event(agent="other:1", shop="other"), names_for(SETTINGS, "other", "other:1"))
    assert unknown.title == "【客服预警】other · other:1：买家已等待 23 秒（阈值 15 秒）"
    assert (
        firing_notice(
            event(agent="flagship:aqiang"), names_for(SETTINGS, "flagship", "flagship:aqiang")
        ).mentions
        == ()
    )


def test_first_response_slow_says_so() -> None:
    notice = firing_notice(
        event(value=31.2, alert="FirstResponseSlow"), names_for(SETTINGS, "flagship", "flagship:xiaomei")
    )
    assert notice.title == "【客服预警】旗舰店 · 小美：近 5 分钟平均首次响应 31 秒（阈值 15 秒）"


def test_resolved_says_recovered_with_the_longest_wait_when_known() -> None:
    names = names_for(SETTINGS, "flagship", "flagship:xiaomei")
    assert (
        resolved_notice(event("resolved", 0.0), names, peak_seconds=30.5).title
        == "【客服预警】旗舰店 · 小美：已恢复（最长等待 31 秒）"
    )
    assert resolved_notice(event("resolved", 0.0), names).title == "【客服预警】旗舰店 · 小美：已恢复"


@pytest.mark.parametrize(("seconds", "whole"), [(22.5, 23), (22.49, 22), (15.0, 15), (0.4, 0), (14.5, 15)])
def test_seconds_are_rounded_half_up(seconds: float, whole: int) -> None:
    assert whole_seconds(seconds) == whole


def test_a_link_to_the_shops_floor_when_floor_url_is_set() -> None:
    link = floor_link("http://wall.example:6066/", "旗舰 1")
    assert link == "http://wall.example:6066/floor?shop=%E6%97%97%E8%88%B0%201"
    notice = firing_notice(event(), names_for(SETTINGS, "flagship", "flagship:xiaomei"), link)
    assert f"]({link})" in notice.markdown and link in notice.text and notice.link == link
    assert floor_link(None, "flagship") is None and floor_link("", "flagship") is None


def test_a_summary_names_every_agent_longest_wait_first() -> None:
    rows = [(f"客服{n}", 15.0 + n) for n in range(12)]
    notice = summary_notice("flagship", "旗舰店", rows, 15.0, floor_link("http://w", "flagship"))
    assert notice.title == "【客服预警】旗舰店 · 12 位客服有买家等待超过 15 秒"
    assert "12 位客服有买家等待超过 15 秒：客服11 26 秒、客服10 25 秒、" in notice.text
    assert all(f"客服{n} {15 + n} 秒" in notice.markdown for n in range(12))
    assert notice.mentions == () and notice.link == "http://w/floor?shop=flagship"


def test_a_test_message_names_the_shop() -> None:
    notice = test_notice("flagship", "旗舰店", None)
    assert notice.title.startswith("【客服预警 · 测试】旗舰店：测试消息")
    assert notice.mentions == () and notice.link is None


PLANTED = (
    "s1:x**\n\n**【客服预警】旗舰店 · 全部客服：已恢复**\n\n"
    '[详情](https://evil.example/login) <@all> <at user_id="all">'
)


def _planted_notices() -> list[Notice]:
    event = AlertEvent(
        alert="BuyerWaitingTooLong",
        state="firing",
        shop_id="s1",
        agent_id=PLANTED,
        value=41.0,
        threshold=15.0,
        ts=1_772_420_400_000,
        alert_id="BuyerWaitingTooLong|s1|x|1",
    )
    names = Names("s1", PLANTED)
    return [
        firing_notice(event, names),
        resolved_notice(msgspec.structs.replace(event, state="resolved"), names),
        rule_notice(event, f"summary of {PLANTED}", Names("s1", "")),
        summary_notice("s1", "s1", [(PLANTED, 41.0), ("小美", 20.0)], 15.0),
    ]


@pytest.mark.parametrize("notice", _planted_notices(), ids=["firing", "resolved", "rule", "summary"])
def test_an_id_from_the_input_is_shown_as_written_and_never_acted_on(notice: Notice) -> None:
    """An agent id (any 1-128 characters of kefu.messages) or an Alertmanager label planted a
    link, a WeCom @all, a Feishu @all and a bold fake 已恢复 headline in the leads' chat."""
    for planted in ("](", "<@", "<at", "\n\n**【客服预警】旗舰店"):
        assert planted not in notice.markdown and planted not in notice.text
    assert notice.markdown.count("**") == 2  # the title's own bold, nothing else
    assert "\n" not in notice.title
    assert "［详情］(https://evil.example/login) ＜@all＞" in notice.markdown  # as written, inert
