"""`host:port` as the settings write it (Kafka bootstrap servers, Redis Cluster nodes)."""

from __future__ import annotations

DEFAULT_HOST = "127.0.0.1"


def host_port(text: str) -> tuple[str, int]:
    """`host:port`, `[v6]:port` or `:port` (the local host); ValueError for anything else."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected host:port, got {text.strip()!r}")
    return host.strip("[]") or DEFAULT_HOST, int(port)
