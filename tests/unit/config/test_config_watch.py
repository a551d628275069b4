from __future__ import annotations

import os
from pathlib import Path

from agents.core.policy import PolicyBook
from config.settings import settings_from_yaml
from config.watch import ConfigWatcher


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
