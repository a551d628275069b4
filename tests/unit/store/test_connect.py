"""The Redis URL decides the client: one server, or a cluster, with the same auth and TLS."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from agents.store.connect import cluster_nodes, connect, is_cluster_url


def test_a_server_url_gives_a_plain_client() -> None:
    client = connect("rediss://kefu:secret@127.0.0.1:6380/2?ssl_ca_certs=/tmp/ca.pem")
    assert type(client) is aioredis.Redis
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["username"], kwargs["password"], kwargs["db"]) == ("kefu", "secret", 2)
    assert kwargs["ssl_ca_certs"] == "/tmp/ca.pem"
    asyncio.run(client.aclose())


def test_a_cluster_url_gives_a_cluster_client_with_every_node_and_the_same_login() -> None:
    url = "rediss+cluster://kefu:s%40cret@127.0.0.1:7000,127.0.0.1:7001,[::1]:7002?ssl_ca_certs=/tmp/ca.pem"
    assert is_cluster_url(url) and not is_cluster_url("redis://127.0.0.1:6379/0")
    client = connect(url)  # connects lazily: nothing listens there
    assert isinstance(client, RedisCluster)
    assert sorted(node.name for node in client.startup_nodes) == [
        "127.0.0.1:7000",
        "127.0.0.1:7001",
        "::1:7002",
    ]
    kwargs = client.connection_kwargs
    assert (kwargs["username"], kwargs["password"], kwargs["ssl_ca_certs"]) == (
        "kefu",
        "s@cret",
        "/tmp/ca.pem",
    )
    assert all(node.connection_kwargs["password"] == "s@cret" for node in client.startup_nodes)


def test_cluster_nodes_keeps_the_first_node_url_in_redis_pys_form() -> None:
    first, nodes = cluster_nodes("redis+cluster://127.0.0.1:7000,127.0.0.2:7001")
    assert first == "redis://127.0.0.1:7000"
    assert nodes == [("127.0.0.1", 7000), ("127.0.0.2", 7001)]


def test_a_cluster_url_without_ports_is_refused() -> None:
    with pytest.raises(ValueError, match="host:port"):
        cluster_nodes("redis+cluster://127.0.0.1,127.0.0.2:7001")
