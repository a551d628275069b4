"""/healthz on the real stack: it checks Redis as the configured user, so a password changed
under a running worker turns it unhealthy with that reason, and healthy again when fixed."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.integration.harness import Deployment, Stack, wait_for

USER = "kefu-health"


def healthz(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def own_user_deployment(stack: Stack, tmp_path: Path) -> Iterator[tuple[Deployment, redis.Redis]]:
    """A deployment whose Redis URL names its own ACL user on the stack's plain redis-server."""
    deployment = Deployment(stack, tmp_path, redis_db=4)
    admin = redis.Redis.from_url(deployment.redis_url)
    admin.acl_setuser(USER, enabled=True, passwords=["+first-password"], keys=["kp:*"], commands=["+@all"])
    deployment.redis_url = deployment.redis_url.replace("redis://", f"redis://{USER}:first-password@")
    try:
        yield deployment, admin
    finally:
        deployment.close()
        admin.acl_deluser(USER)
        admin.close()


def test_a_password_changed_under_a_running_worker_is_the_reason_for_503(
    own_user_deployment: tuple[Deployment, redis.Redis],
) -> None:
    deployment, admin = own_user_deployment
    deployment.create_topics()
    _, port = deployment.start_worker()
    assert healthz(port) == (200, {"status": "ok"})

    admin.acl_setuser(USER, enabled=True, reset_passwords=True, passwords=["+second-password"])
    admin.execute_command("CLIENT", "KILL", "USER", USER)  # its connections log in again
    wait_for(lambda: healthz(port)[0] == 503, timeout=30, what="/healthz to turn 503")
    status, body = healthz(port)
    assert status == 503 and body["status"] == "unhealthy"
    assert any(p.startswith("redis: Redis refused the login") for p in body["problems"]), body
    assert "second-password" not in json.dumps(body) and "first-password" not in json.dumps(body)

    admin.acl_setuser(USER, enabled=True, reset_passwords=True, passwords=["+first-password"])
    wait_for(lambda: healthz(port)[0] == 200, timeout=30, what="/healthz to recover")
