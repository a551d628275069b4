"""Build the asyncio Redis client from the configured URL: one server, or a Redis Cluster.

`redis://` and `rediss://` (TLS) name one server, as redis-py reads them. Prefixing the
scheme with `+cluster` names a cluster: `redis+cluster://[user:password@]host:port[,host:port…]`
or `rediss+cluster://…`. Every listed node is a startup node (the client discovers the rest);
credentials, TLS and query options (`?ssl_ca_certs=…`) reach every node's connection, exactly
as for a single server.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster

from config.addresses import cluster_nodes, is_cluster_url

RedisClient = aioredis.Redis | RedisCluster
__all__ = ["RedisClient", "cluster_nodes", "connect", "is_cluster_url"]


# Fail over quickly instead of hanging a batch; a broken connection is noticed within 15 s.
_CONNECTION = {"socket_timeout": 10, "socket_connect_timeout": 5, "health_check_interval": 15}
# redis-py 6+ caps a server's pool at 100 connections and *raises* past it: a burst of commands
# (notify claiming a flood of alerts, a leader round over 1,000 shops) then failed under load.
# A blocking pool of the same size makes the 101st command wait its turn, up to this long.
POOL_CONNECTIONS = 100
POOL_WAIT_SECONDS = 20


def connect(url: str, **options: Any) -> RedisClient:
    """A plain client for a server URL, a cluster client for a `+cluster` URL."""
    settings = _CONNECTION | options
    if not is_cluster_url(url):
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=POOL_CONNECTIONS, timeout=POOL_WAIT_SECONDS, **settings
        )
        return aioredis.Redis.from_pool(pool)  # the client owns it: closing the client closes it
    first, nodes = cluster_nodes(url)
    # from_url makes the first node a startup node; the others join it. Each gets the URL's
    # credentials and TLS options (RedisCluster rebuilds startup nodes with them).
    others = [ClusterNode(host, port) for host, port in nodes[1:]]
    return RedisCluster.from_url(first, startup_nodes=others, **settings)
