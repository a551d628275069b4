"""Re-read the configuration file when it changes, so block lists apply while running.

Only shop rules (`defaults`, `shops`) change live; connection settings need a restart. An
invalid new file is reported and ignored: the worker keeps the last good rules.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import msgspec

from config.settings import ConfigError, Settings, config_path, settings_from_yaml

log = logging.getLogger(__name__)


class ConfigWatcher:
    def __init__(
        self, current: Settings, apply: Callable[[Settings], None], path: Path | None = None
    ) -> None:
        self.path = path or config_path()
        self.current = current
        self.apply = apply
        self._stamp = self._read_stamp()

    def _read_stamp(self) -> tuple[int, int] | None:
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def poll(self) -> bool:
        """Apply the file if it changed since the last poll; True when new rules took effect."""
        stamp = self._read_stamp()
        if stamp is None or stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            fresh = settings_from_yaml(self.path.read_text(encoding="utf-8"), str(self.path))
        except (ConfigError, OSError) as exc:
            log.error("configuration change ignored, keeping the last good rules: %s", exc)
            return False
        merged = msgspec.structs.replace(self.current, defaults=fresh.defaults, shops=fresh.shops)
        if merged == self.current:
            return False
        self.current = merged
        self.apply(merged)
        log.info(
            "configuration reloaded from %s: shop rules apply to events processed from now on", self.path
        )
        return True
