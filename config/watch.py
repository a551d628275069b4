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

# Keys whose change re-reads history differently: buckets already hold the old reading until
# `kefu-pulse rebuild` recomputes them from the input topics.
HISTORY_KEYS = ("timezone", "after_sale_days", "service_hours", "response_targets_seconds")
ATTRIBUTION_KEYS = ("window", "rule", "judge", "deduct_refunds")


def history_changes(old: Settings, new: Settings) -> list[str]:
    """`$.path: old -> new` for every changed key that alters how history is credited."""
    changes: list[str] = []

    def compare(path: str, before: object, after: object) -> None:
        for key in HISTORY_KEYS:
            was, now = getattr(before, key, None), getattr(after, key, None)
            if was != now:
                changes.append(f"{path}.{key}: {was!r} -> {now!r}")
        was_rules, now_rules = getattr(before, "attribution", None), getattr(after, "attribution", None)
        for key in ATTRIBUTION_KEYS:
            was, now = getattr(was_rules, key, None), getattr(now_rules, key, None)
            if was != now:
                changes.append(f"{path}.attribution.{key}: {was!r} -> {now!r}")

    compare("$.defaults", old.defaults, new.defaults)
    for shop in sorted(old.shops.keys() | new.shops.keys()):
        compare(f"$.shops.{shop}", old.shops.get(shop), new.shops.get(shop))
    return changes


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
        rereads = history_changes(self.current, merged)
        self.current = merged
        self.apply(merged)
        log.info(
            "configuration reloaded from %s: shop rules apply to events processed from now on", self.path
        )
        if rereads:
            log.warning(
                "these keys change how history is credited; the numbers already counted keep the old "
                "reading until `kefu-pulse rebuild` recomputes them: %s",
                "; ".join(rereads),
            )
        return True
