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


KAFKA_PORT = 9092  # what aiokafka, kafka-python and Faust take for a host given without one


def bootstrap_servers(text: str) -> list[tuple[str, int]]:
    """Kafka's bootstrap list, `host[:port][,host[:port]...]`; ValueError naming the bad entry."""
    servers = []
    for server in (entry.strip() for entry in text.split(",")):
        bare = ":" not in server or (server.startswith("[") and server.endswith("]"))
        servers.append((server.strip("[]"), KAFKA_PORT) if bare and server else host_port(server))
    return servers


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


REDIS_SCHEMES = ("redis", "rediss", "unix", f"redis{CLUSTER_SUFFIX}", f"rediss{CLUSTER_SUFFIX}")
# A password with one of these unencoded cuts the URL short where the client reads it: the
# "port" or the "database" is then a piece of the password, which no message may quote.
_ENCODE_HINT = "(in a password, write / as %2F, # as %23, ? as %3F and @ as %40)"


def check_redis_url(url: str) -> None:
    """ValueError unless the client can connect with `url` as written. Its message says which
    part is wrong and quotes none of the URL: any part may be a piece of the password."""
    parts = urlsplit(url)
    if parts.scheme not in REDIS_SCHEMES:
        raise ValueError(f"the scheme must be one of {', '.join(s + '://' for s in REDIS_SCHEMES)}")
    try:
        server = cluster_nodes(url)[0] if is_cluster_url(url) else url
        urlsplit(server).port  # noqa: B018 - reading it checks it
    except ValueError:
        raise ValueError(f"a port is not a number of 1-65535 {_ENCODE_HINT}") from None
    try:
        options = parse_url(server)  # the query's options
    except ValueError:
        raise ValueError(f"an option after ? has a value the client cannot read {_ENCODE_HINT}") from None
    database = urlsplit(server).path.strip("/")
    if parts.scheme != "unix" and database and not database.isdigit():
        # redis-py ignores it and uses database 0: another deployment's numbers, say
        raise ValueError(f"the database after the port must be a number {_ENCODE_HINT}")
    if is_cluster_url(url) and options.get("db") not in (None, 0):
        # A cluster has database 0 only (after the port, or as ?db=): redis-py refused it at
        # start, as a traceback.
        raise ValueError("a Redis Cluster has database 0 only: end the URL with /0 or no database")
