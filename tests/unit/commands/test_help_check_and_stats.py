"""The first-hour pieces that need no stack: the help text, argv reading, and the judgements
`check` and the worker's start-up make from facts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import Settings
from streams.commands.check import Check, redis_check, report, topic_checks
from streams.commands.help import OWN_COMMANDS, command_of, wants_debug
from streams.commands.stats import unknown_shop_message
from streams.render.floor_table import FULL_TERMINAL, WIDE_TERMINAL, floor_table, headline_target
from streams.wire.preflight import TopicFacts, input_topic_problem
from tests.builders import agent_row, shop_floor

KEFU = Path(sys.executable).with_name("kefu-pulse")
SETTINGS = Settings()
NAMES = SETTINGS.kafka.topics


def facts(messages: int | None, orders: int | None) -> TopicFacts:
    return TopicFacts({NAMES.messages: messages, NAMES.orders: orders, NAMES.alerts: 8, NAMES.deadletter: 8})


def test_help_introduces_kefu_pulse_and_lists_its_commands_first() -> None:
    result = subprocess.run([str(KEFU), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    text = result.stdout
    assert "Welcome" not in text and "faust-streaming.github.io" not in text
    assert text.splitlines()[2].strip().startswith("kefu-pulse: live customer-service analytics")
    ours, faust = text.index("kefu-pulse commands:"), text.index("Faust's own commands:")
    assert ours < faust
    listed = [
        line.split()[0]
        for line in text[ours:faust].splitlines()[1:]
        if line.startswith("  ") and not line.startswith("   ")
    ]
    assert listed == list(OWN_COMMANDS)
    # every command interfaces.md names is among ours (`report` once sat under Faust's)
    every = [
        "demo",
        "worker",
        "check",
        "stats",
        "report",
        "details",
        "notify",
        "simulate",
        "replay",
        "topics",
        "rebuild",
    ]
    assert listed == [*every, "repartition"]
    assert "livecheck" in text[faust:] and "livecheck" not in text[ours:faust]


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["worker", "-l", "info"], "worker"),
        (["-l", "info", "worker"], "worker"),
        (["--loglevel", "debug", "check", "--json"], "check"),
        (["-A", "worker", "stats"], "stats"),  # an option's value is not the command
        (["--help"], None),
    ],
)
def test_the_command_is_found_after_the_root_options(argv: list[str], command: str | None) -> None:
    assert command_of(argv) == command


def test_debug_is_asked_for_in_every_spelling() -> None:
    for argv in (["-l", "debug"], ["--loglevel", "debug"], ["--loglevel=debug"], ["--debug"]):
        assert wants_debug(["worker", *argv]), argv
    assert not wants_debug(["worker", "-l", "info"])


def test_co_partitioning_needs_both_counts_equal_and_equal_to_the_setting() -> None:
    assert input_topic_problem(SETTINGS, facts(8, 8)) is None
    mismatch = input_topic_problem(SETTINGS, facts(8, 4))
    assert mismatch is not None and f"{NAMES.messages} has 8, {NAMES.orders} has 4" in mismatch
    both_other = input_topic_problem(SETTINGS, facts(4, 4))
    assert both_other is not None and "kafka.partitions is 8" in both_other
    missing = input_topic_problem(SETTINGS, facts(None, 8))
    assert missing is not None and f"input topic {NAMES.messages} does not exist" in missing
    assert "topics create" in missing
    both = input_topic_problem(SETTINGS, facts(None, None))
    assert both is not None and "input topics" in both and "do not exist" in both


def test_input_retention_shorter_than_the_windows_fails_the_check() -> None:
    retention = {NAMES.messages: 27.9, NAMES.orders: 28.0, NAMES.alerts: 1.0, NAMES.deadletter: None}
    found = {c.name: c for c in topic_checks(SETTINGS, facts(8, 8), retention, window_days=28)}
    assert not found[f"topic {NAMES.messages}"].ok and "rebuild" in found[f"topic {NAMES.messages}"].detail
    assert found[f"topic {NAMES.orders}"].ok
    assert found[f"topic {NAMES.alerts}"].ok  # output topics need no history
    assert found[f"topic {NAMES.deadletter}"].detail.endswith("retention unlimited")


@pytest.mark.parametrize(
    ("policy", "ok"), [("noeviction", True), ("allkeys-lru", False), ("volatile-ttl", False)]
)
def test_an_evicting_redis_fails_the_check(policy: str, ok: bool) -> None:
    check = redis_check("redis://:pw12345@h:1/0", {"redis_version": "7.0", "maxmemory_policy": policy})
    assert check.ok is ok and "pw12345" not in check.detail
    assert ("set maxmemory-policy noeviction" in check.detail) is not ok


def test_check_exits_non_zero_when_any_line_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert report([Check("a", True, "fine"), Check("b", True, "fine")], as_json=False) == 0
    assert report([Check("a", True, "fine"), Check("b", False, "broken")], as_json=False) == 1
    out = capsys.readouterr().out
    assert "✓ a: fine" in out and "✗ b: broken" in out and "1 of 2 checks passed, 1 failed" in out


def test_an_unknown_shop_is_named_with_the_known_ones() -> None:
    assert unknown_shop_message("x", []).endswith("no shop is configured and no events were processed yet")
    assert unknown_shop_message("x", ["a", "b"]) == "unknown shop 'x'; known shops: a, b"
    many = unknown_shop_message("x", [f"s{i:02}" for i in range(25)])
    assert many.endswith("s19 and 5 more")


def test_a_narrow_terminal_keeps_the_columns_a_lead_reads_first() -> None:
    floor = shop_floor("s1", 15, [agent_row("s1:a", 3.5, 2.0)])
    narrow = [c.header for c in floor_table(floor, "5m", 80).columns]
    wide = [c.header for c in floor_table(floor, "5m", WIDE_TERMINAL).columns]
    assert narrow == ["agent", "waiting", "oldest s", "回复率", "15秒回复率", "首响 s", "询单转化率"]
    assert len(wide) == 14 and set(narrow) < set(wide)
    full = [c.header for c in floor_table(floor, "5m", FULL_TERMINAL).columns]
    assert len(full) == 19 and {"满意度", "状态", "在线"} < set(full) - set(wide)


def test_the_table_says_when_the_shop_is_outside_service_hours() -> None:
    closed = shop_floor("s1", 15, [agent_row("s1:a")], in_service_hours=False)
    assert "outside service hours" in str(floor_table(closed, "5m", 80).title)
    assert "outside" not in str(floor_table(shop_floor("s1", 15, []), "5m", 80).title)


def test_the_headline_target_is_15_seconds_or_the_shops_first() -> None:
    assert (headline_target([180, 15]), headline_target([30, 180]), headline_target([])) == (15, 30, None)
