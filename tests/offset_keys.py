"""Reading the applied offsets back out of Redis, as the tests do (agents/store/keys.py's layout)."""

from __future__ import annotations

from agents.store import keys

OFFSET_KEY_PATTERN = f"{keys.PREFIX}:{{p*}}:off:*"


def parse_offset_key(key: str) -> tuple[str, int]:
    """(topic, partition) of a `keys.offset_key`."""
    tag, _, topic = key.partition("}:off:")
    return topic, int(tag.split("{p", 1)[1].split(".", 1)[0])
