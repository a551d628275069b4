from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from agents.core.policy import PolicyBook
from config.settings import Settings, settings_from_yaml
from config.watch import ConfigWatcher, changed_keys, history_changes

FULL = (
    "defaults: {alert_threshold_seconds: 20}\n"
    "shops:\n"
    "  s1:\n"
    "    block: ['ad_*']\n"
    "    timezone: Asia/Tokyo\n"
    "  s2:\n"
    "    block: ['spam_*']\n"
)


def write(path: Path, text: str, bump: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(bump, bump))


def settled_poll(watcher: ConfigWatcher) -> bool:
    """A change is read one poll after it was seen, unchanged since: it may be half-written."""
    assert not watcher.poll()
    return watcher.poll()


class Applied:
    def __init__(self) -> None:
        self.settings: list[Settings] = []

    def __call__(self, settings: Settings) -> None:
        self.settings.append(settings)


def watching(tmp_path: Path, text: str) -> tuple[Path, ConfigWatcher, Applied]:
    path = tmp_path / "kefu.yaml"
    write(path, text, 1_000_000_000)
    applied = Applied()
    return path, ConfigWatcher(settings_from_yaml(text), applied, path, environ={}), applied


def test_block_list_change_applies_and_an_invalid_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "kefu.yaml"
    write(path, "shops: {s1: {block: ['ad_*']}}\n", 1_000_000_000)
    settings = settings_from_yaml(path.read_text())
    book = PolicyBook(settings)
    watcher = ConfigWatcher(settings, book.update, path, environ={})
    assert not watcher.poll()
    assert book("s1").is_blocked("ad_1") and not book("s1").is_blocked("spam_1")

    write(path, "shops: {s1: {block: ['spam_*']}}\n", 2_000_000_000)
    assert settled_poll(watcher)
    assert book("s1").is_blocked("spam_1") and not book("s1").is_blocked("ad_1")

    write(path, "shops: {s1: {block: [1]}}\n", 3_000_000_000)
    assert not settled_poll(watcher)
    assert book("s1").is_blocked("spam_1")


def test_a_file_changed_within_the_last_poll_waits_for_the_next(tmp_path: Path) -> None:
    path, watcher, applied = watching(tmp_path, FULL)
    write(path, FULL.replace("ad_*", "promo_*"), 2_000_000_000)
    assert not watcher.poll() and applied.settings == []  # just changed: perhaps still being written
    write(path, FULL.replace("ad_*", "vip_*"), 3_000_000_000)
    assert not watcher.poll() and applied.settings == []  # changed again since: still waiting
    assert watcher.poll()  # the same as at the last poll: complete
    assert [s.shops["s1"].block for s in applied.settings] == [["vip_*"]]


def test_a_file_cut_partway_is_not_applied(tmp_path: Path) -> None:
    """An in-place write caught halfway: valid YAML, valid settings, but s2 and s1's zone lost."""
    path, watcher, applied = watching(tmp_path, FULL)
    cut = FULL[: FULL.index("    timezone")]
    write(path, cut, 2_000_000_000)
    assert not watcher.poll()
    write(path, FULL.replace("20", "25"), 3_000_000_000)  # the writer finishes
    assert not watcher.poll()
    assert watcher.poll()
    assert all("s2" in s.shops and s.shops["s1"].timezone == "Asia/Tokyo" for s in applied.settings)
    assert watcher.current.defaults.alert_threshold_seconds == 25


@pytest.mark.parametrize("empty", ["", "\n", "# kefu-pulse\n"])
def test_an_empty_file_is_not_applied(tmp_path: Path, caplog: pytest.LogCaptureFixture, empty: str) -> None:
    """`cat new > kefu.yaml` truncates first; a blank file would drop every block list."""
    path, watcher, applied = watching(tmp_path, FULL)
    with caplog.at_level(logging.INFO, logger="config.watch"):
        write(path, empty, 2_000_000_000)
        for _ in range(4):
            assert not watcher.poll()
    assert applied.settings == [] and watcher.current.shops["s1"].block == ["ad_*"]
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "empty" in said[0] and "{}" in said[0]


def test_a_restart_only_change_is_said_once_and_not_applied(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path, watcher, applied = watching(tmp_path, FULL)
    running = watcher.current
    moved = FULL + "redis: {url: 'redis://10.0.0.9:6379/1'}\nprocessing: {batch_size: 500}\n"
    with caplog.at_level(logging.INFO, logger="config.watch"):
        write(path, moved, 2_000_000_000)
        assert not settled_poll(watcher)
        for _ in range(3):
            assert not watcher.poll()
        write(path, moved.replace("ad_*", "vip_*"), 3_000_000_000)  # a live change, later
        assert settled_poll(watcher)
    assert watcher.current.redis == running.redis and watcher.current.processing == running.processing
    assert [s.redis.url for s in applied.settings] == [running.redis.url]
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2, said
    assert "restart" in said[0] and "redis.url" in said[0] and "processing.batch_size" in said[0]
    assert caplog.records[0].levelno == logging.WARNING
    assert "shops.s1.block" in said[1] and "redis.url" not in said[1]  # said once, not again


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("defaults: {retention_days: 120}\n", "$.defaults.retention_days: 93 -> 120"),
        ("defaults: {timezone: UTC}\n", "$.defaults.timezone: 'Asia/Shanghai' -> 'UTC'"),
        ("defaults: {after_sale_days: 3}\n", "$.defaults.after_sale_days: 7 -> 3"),
    ],
)
def test_a_history_change_says_rebuild(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, change: str, named: str
) -> None:
    path, watcher, _ = watching(tmp_path, "shops: {s1: {block: ['ad_*']}}\n")
    with caplog.at_level(logging.INFO, logger="config.watch"):
        write(path, "shops: {s1: {block: ['ad_*']}}\n" + change, 2_000_000_000)
        assert settled_poll(watcher)
    warnings = [r.getMessage() for r in caplog.records if "rebuild" in r.getMessage()]
    assert len(warnings) == 1 and named in warnings[0]


def test_one_log_line_names_every_changed_key(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path, watcher, _ = watching(tmp_path, FULL)
    changed = (
        FULL.replace("ad_*", "vip_*").replace("20", "30")
        + "  s3: {name: new}\n"
        + "web: {port: 7000}\n"
        + "kafka: {bootstrap: 'broker:9092'}\n"
    )
    with caplog.at_level(logging.INFO, logger="config.watch"):
        write(path, changed, 2_000_000_000)
        assert settled_poll(watcher)
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1, said
    for key in (
        "shops.s1.block",
        "defaults.alert_threshold_seconds",
        "shops.s3",
        "web.port",
        "kafka.bootstrap",
    ):
        assert key in said[0], key
    assert "restart" in said[0] and "shops.s2" not in said[0]
    assert watcher.current.web.port == 6066 and watcher.current.shops["s3"].name == "new"


def test_changed_keys_names_the_deepest_key_and_added_or_removed_ones() -> None:
    old = settings_from_yaml("shops: {s1: {block: [a], agents: {x: {name: X}}}, s2: {}}")
    new = settings_from_yaml("shops: {s1: {block: [a], agents: {x: {name: Y}}}, s3: {}}")
    assert changed_keys(old, new) == ["shops.s1.agents.x.name", "shops.s2", "shops.s3"]
    assert changed_keys(old, old) == []


def test_a_change_of_how_history_is_credited_is_logged_once_with_its_keys(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "kefu.yaml"
    write(path, "shops: {s1: {block: ['ad_*']}}\n", 1_000_000_000)
    settings = settings_from_yaml(path.read_text())
    watcher = ConfigWatcher(settings, PolicyBook(settings).update, path, environ={})
    with caplog.at_level(logging.INFO, logger="config.watch"):
        write(path, "shops: {s1: {block: ['spam_*']}}\n", 2_000_000_000)  # a block list: no history
        assert settled_poll(watcher)
        assert not [r for r in caplog.records if "rebuild" in r.getMessage()]
        write(
            path,
            "defaults: {attribution: {judge: paid}}\n"
            "shops: {s1: {block: ['spam_*'], attribution: {deduct_refunds: true}}}\n",
            3_000_000_000,
        )
        assert settled_poll(watcher)
        assert not watcher.poll()  # unchanged file: nothing more is said
    warnings = [r.getMessage() for r in caplog.records if "rebuild" in r.getMessage()]
    assert len(warnings) == 1
    assert "$.defaults.attribution.judge: 'created' -> 'paid'" in warnings[0]
    assert "$.shops.s1.attribution.deduct_refunds: None -> True" in warnings[0]


def test_history_changes_name_the_service_clock_and_targets() -> None:
    old = settings_from_yaml("")
    new = settings_from_yaml("defaults: {service_hours: '08:00-23:00', response_targets_seconds: [30]}")
    assert history_changes(old, new) == [
        "$.defaults.service_hours: None -> '08:00-23:00'",
        "$.defaults.response_targets_seconds: [15, 180] -> [30]",
    ]
    assert history_changes(new, new) == []


def test_a_file_saved_in_another_encoding_is_ignored_and_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A GBK save (an editor on Windows, Chinese shop names) raised out of the reload timer,
    which stopped the worker."""
    path, watcher, applied = watching(tmp_path, FULL)
    path.write_bytes("shops: {旗舰店: {block: ['ad_*']}}\n".encode("gbk"))
    os.utime(path, ns=(2_000_000_000, 2_000_000_000))
    with caplog.at_level(logging.ERROR, logger="config.watch"):
        assert not settled_poll(watcher)
        assert not watcher.poll() and not watcher.poll()
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "is not UTF-8 text" in said[0] and "keeping the last good rules" in said[0]
    assert applied.settings == []
    write(path, FULL.replace("ad_*", "promo_*"), 3_000_000_000)  # saved again, as UTF-8
    assert settled_poll(watcher)
    assert applied.settings[-1].shops["s1"].block == ["promo_*"]
