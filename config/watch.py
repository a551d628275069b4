"""Re-read the configuration file when it changes, so block lists apply while running.

A reload is atomic or refused:
- the file must be complete: one that changed since the last poll may still be being written
  (an editor saving in place, `cat new > kefu.yaml`), so it waits for the next poll, and an
  empty one (what `cat … >` leaves first) is never applied;
- the whole new file is parsed and validated as a restart would read it (with the environment's
  overrides); an invalid file is reported and ignored, and the worker keeps the last good rules;
- shop rules (`defaults`, `shops`) are then applied all together, with one log line naming every
  changed key. `processing`, `redis`, `kafka` and `web` only change on a restart: the running
  values stay, and the line says so, once per change. Keys that re-read history (the
  attribution rules, the service clock, the targets, the time zone, `after_sale_days`,
  `retention_days`) apply to what is processed from now on, and a warning names the rebuild.

docs/operations.md, "Changing the configuration while running", says how to write the file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import msgspec
import yaml

from config.settings import (
    ConfigError,
    Settings,
    _apply_environment,
    config_path,
    not_utf8,
    settings_from_yaml,
)

log = logging.getLogger(__name__)
IGNORED = "configuration change ignored, keeping the last good rules: %s"

# Keys whose change re-reads history differently: buckets already hold the old reading (or,
# for retention_days, the old expiry) until `kefu-pulse rebuild` recomputes them.
HISTORY_KEYS = ("timezone", "after_sale_days", "service_hours", "response_targets_seconds", "retention_days")
ATTRIBUTION_KEYS = ("window", "rule", "judge", "deduct_refunds")
# Sections the running worker built its clients, consumer and web server from.
RESTART_SECTIONS = ("processing", "redis", "kafka", "web")
LIVE_SECTIONS = ("defaults", "shops")

# (inode, mtime, size): a rename, a write and a truncation each change it.
Stamp = tuple[int, int, int]


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


def changed_keys(old: object, new: object, path: str = "") -> list[str]:
    """The dotted paths (`shops.s1.block`) where `new` differs from `old`: the deepest key that
    both sides have, or the added or removed one. Names only: a value may be a secret."""
    if old == new:
        return []
    if isinstance(old, msgspec.Struct) and type(old) is type(new):
        return [
            key
            for name in old.__struct_fields__
            for key in changed_keys(getattr(old, name), getattr(new, name), _join(path, name))
        ]
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            key
            for name in sorted(old.keys() | new.keys(), key=str)
            for key in (
                changed_keys(old[name], new[name], _join(path, str(name)))
                if name in old and name in new
                else [_join(path, str(name))]
            )
        ]
    return [path]


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _sections(settings: Settings, names: tuple[str, ...]) -> dict[str, object]:
    return {name: getattr(settings, name) for name in names}


def _is_blank(text: str) -> bool:
    """Empty, or nothing but comments: what a truncation leaves, never a file someone meant
    (the defaults are written `{}`)."""
    try:
        return yaml.safe_load(text) is None
    except yaml.YAMLError:
        return False  # not blank: invalid, which the settings parser reports


class ConfigWatcher:
    def __init__(
        self,
        current: Settings,
        apply: Callable[[Settings], None],
        path: Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.path = path or config_path()
        self.current = current
        self.apply = apply
        self._environ = dict(os.environ if environ is None else environ)
        # The last complete file read (as a restart would read it): a key that needs a restart
        # is named when it changes against this, so once per change.
        self._last_read = current
        self._stamp = self._read_stamp()  # the file as last read (or ignored)
        self._settling: Stamp | None = None  # a newer file, seen at the last poll

    def _read_stamp(self) -> Stamp | None:
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    def poll(self) -> bool:
        """Apply the file if it changed and has stayed the same since the last poll; True when
        new rules took effect."""
        stamp = self._read_stamp()
        if stamp is None or stamp == self._stamp:
            self._settling = None
            return False
        if stamp != self._settling:  # changed within the last poll: perhaps still being written
            self._settling = stamp
            return False
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            log.error(IGNORED, exc.strerror)
            return False
        except UnicodeDecodeError as exc:  # saved as GBK, say: said once, until it changes again
            self._stamp, self._settling = stamp, None
            log.error(IGNORED, not_utf8(self.path, exc))
            return False
        if self._read_stamp() != stamp:  # written to while it was read
            self._settling = None
            return False
        self._stamp, self._settling = stamp, None
        return self._consider(text)

    def _consider(self, text: str) -> bool:
        if _is_blank(text):
            log.warning(
                "configuration file %s is empty: ignored, keeping the last good rules "
                "(write `{}` for the defaults)",
                self.path,
            )
            return False
        try:
            fresh = _apply_environment(settings_from_yaml(text, str(self.path)), self._environ)
        except ConfigError as exc:
            log.error(IGNORED, exc)
            return False
        return self._switch(fresh)

    def _switch(self, fresh: Settings) -> bool:
        previous, self._last_read = self._last_read, fresh
        restart = _sections(self.current, RESTART_SECTIONS), _sections(fresh, RESTART_SECTIONS)
        pending = set(changed_keys(*restart))
        needs_restart = [
            k for k in changed_keys(_sections(previous, RESTART_SECTIONS), restart[1]) if k in pending
        ]
        merged = msgspec.structs.replace(self.current, defaults=fresh.defaults, shops=fresh.shops)
        applied = changed_keys(_sections(self.current, LIVE_SECTIONS), _sections(merged, LIVE_SECTIONS))
        rereads = history_changes(self.current, merged)
        if applied:
            self.current = merged
            self.apply(merged)
        self._announce(applied, needs_restart)
        if rereads:
            log.warning(
                "these keys change how history is credited; the numbers already counted keep the old "
                "reading until `kefu-pulse rebuild` recomputes them: %s",
                "; ".join(rereads),
            )
        return bool(applied)

    def _announce(self, applied: list[str], needs_restart: list[str]) -> None:
        """One line naming every changed key: what took effect, and what waits for a restart."""
        if not applied and not needs_restart:
            return
        said = (
            f"configuration reloaded from {self.path}: {', '.join(applied)}"
            if applied
            else f"configuration change in {self.path}"
        )
        if needs_restart:
            said += f"; not applied until a restart, the running values stay: {', '.join(needs_restart)}"
        log.log(logging.WARNING if needs_restart else logging.INFO, "%s", said)
