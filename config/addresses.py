"""Addresses as the settings write them: `host:port` (Kafka bootstrap servers, Redis Cluster
nodes) and Redis URLs, checked when the settings are read rather than deep inside a client."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from redis.connection import parse_url

DEFAULT_HOST = "127.0.0.1"
CLUSTER_SUFFIX = "+cluster"  # `redis+cluster://` and `rediss+cluster://` name a Redis Cluster


def host_port(text: str) -> tuple[str, int]:
    """`host:port`, `[v6]:port` or `:port` (the local host); ValueError for anything else."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) <= 65535:
        raise ValueError(f"expected host:port with a port of 1-65535, got {text.strip()!r}")
    return host.strip("[]") or DEFAULT_HOST, int(port)


def bootstrap_servers(text: str) -> list[tuple[str, int]]:
    """Kafka's bootstrap list, `host:port[,host:port...]`; ValueError naming the bad entry."""
    return [host_port(server) for server in text.split(",")]


def is_cluster_url(url: str) -> bool:
    return urlsplit(url).scheme.endswith(CLUSTER_SUFFIX)


def cluster_nodes(url: str) -> tuple[str, list[tuple[str, int]]]:
    """(URL of the first node in redis-py's form, every node's (host, port))."""
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    nodes: list[tuple[str, int]] = []
    for node in hosts.split(","):
        try:
            nodes.append(host_port(node))
        except ValueError as exc:
            raise ValueError(f"Redis Cluster URL: {exc}") from None
    first = f"{userinfo}@{hosts.split(',')[0]}" if userinfo else hosts.split(",")[0]
    scheme = parts.scheme.removesuffix(CLUSTER_SUFFIX)
    return urlunsplit((scheme, first, parts.path, parts.query, parts.fragment)), nodes


def check_redis_url(url: str) -> None:
    """ValueError unless the client can connect with `url` as written. Its message never quotes
    the URL (it may hold a password): redis-py's own do not either."""
    server = cluster_nodes(url)[0] if is_cluster_url(url) else url
    parse_url(server)  # scheme, port, query options
    parts = urlsplit(server)
    database = parts.path.strip("/")
    if parts.scheme != "unix" and database and not database.isdigit():
        # redis-py ignores it and uses database 0: another deployment's numbers, say
        raise ValueError(f"the database must be a number, got {database!r}")
