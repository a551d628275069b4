from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from agents.core.policy import PolicyBook
from config.settings import settings_from_yaml
from config.watch import ConfigWatcher, history_changes


def write(path: Path, text: str, bump: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(bump, bump))


def test_block_list_change_applies_and_an_invalid_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "kefu.yaml"
    write(path, "shops: {s1: {block: ['ad_*']}}\n", 1_000_000_000)
    settings = settings_from_yaml(path.read_text())
    book = PolicyBook(settings)
    watcher = ConfigWatcher(settings, book.update, path)
    assert not watcher.poll()
    assert book("s1").is_blocked("ad_1") and not book("s1").is_blocked("spam_1")

    write(path, "shops: {s1: {block: ['spam_*']}}\n", 2_000_000_000)
    assert watcher.poll()
    assert book("s1").is_blocked("spam_1") and not book("s1").is_blocked("ad_1")

    write(path, "shops: {s1: {block: [1]}}\n", 3_000_000_000)
    assert not watcher.poll()
    assert book("s1").is_blocked("spam_1")


def test_a_change_of_how_history_is_credited_is_logged_once_with_its_keys(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "kefu.yaml"
    write(path, "shops: {s1: {block: ['ad_*']}}\n", 1_000_000_000)
    settings = settings_from_yaml(path.read_text())
    watcher = ConfigWatcher(settings, PolicyBook(settings).update, path)
    with caplog.at_level(logging.INFO, logger="config.watch"):
        write(path, "shops: {s1: {block: ['spam_*']}}\n", 2_000_000_000)  # a block list: no history
        assert watcher.poll()
        assert not [r for r in caplog.records if "rebuild" in r.getMessage()]
        write(
            path,
            "defaults: {attribution: {judge: paid}}\n"
            "shops: {s1: {block: ['spam_*'], attribution: {deduct_refunds: true}}}\n",
            3_000_000_000,
        )
        assert watcher.poll()
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
