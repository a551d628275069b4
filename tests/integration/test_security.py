"""Nobody let in: SASL_SSL Kafka, rediss:// with an ACL user, loopback web, quiet logs.

Everything runs against the stack's secured endpoints: the broker's SCRAM-SHA-256 listener
behind TLS and a redis-server that speaks only TLS and knows one ACL user (deploy/local/stack).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import KEFU, Deployment, Stack, chat_message, free_port, wait_for

WORKER_EXIT_TIMEOUT_S = 90


@pytest.fixture
def secured(stack: Stack) -> Stack:
    assert stack.secured is not None, "deploy/local/stack up printed no secured endpoints"
    return stack.secured


@pytest.fixture
def secure_deployment(secured: Stack, tmp_path: Path) -> Iterator[Deployment]:
    deployment = Deployment(secured, tmp_path)
    try:
        yield deployment
    finally:
        deployment.close()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def redis_password(url: str) -> str:
    from urllib.parse import urlsplit

    password = urlsplit(url).password
    assert password
    return password


def listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as the kernel shows them) with a socket listening on `port`."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.rpartition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def run_worker_until_exit(deployment: Deployment, log: Path, overrides: dict[str, str]) -> tuple[int, str]:
    """Start a worker expected to give up by itself; fail (not hang) if it does not."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(KEFU), "worker", "-l", "info"],
            env=deployment.env(KEFU_WEB_PORT=str(free_port())) | overrides,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=deployment.tmp,
            start_new_session=True,
        )
    try:
        code = proc.wait(timeout=WORKER_EXIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"the worker kept running with bad credentials:\n{log.read_text()[-3000:]}")
    return code, log.read_text(errors="replace")


def test_secured_worker_processes_events_and_logs_no_secret(secure_deployment: Deployment) -> None:
    deployment = secure_deployment
    login = deployment.stack.kafka_login
    assert login is not None
    shop = f"sec{deployment.name}"
    deployment.config.write_text(deployment.config.read_text() + f"shops:\n  {shop}: {{name: 安全店}}\n")
    # Distinctive values: any of them in a log or in command output is a leak.
    buyers = [f"tb_private_{deployment.name}_{i}" for i in range(6)]
    secrets = [login.password, redis_password(deployment.redis_url)]

    created = deployment.cli("topics", "create")
    assert created.returncode == 0, created.stderr
    assert "created" in created.stdout

    start = now_ms() - 60_000
    # Two buyers through `replay` (kafka-python over SASL_SSL), one of them also as an event
    # from the future, which the worker dead-letters; the rest through the test's producer.
    replay_file = deployment.tmp / "secure.jsonl"
    replay_lines = [
        chat_message("r1", buyers[0], "buyer", start, agent=f"{shop}:a", shop=shop),
        chat_message("r2", buyers[1], "buyer", start + 1000, agent=f"{shop}:a", shop=shop),
        chat_message("r3", buyers[1], "buyer", now_ms() + 3_600_000, agent=f"{shop}:a", shop=shop),
    ]
    replay_file.write_text("".join(json.dumps(e) + "\n" for e in replay_lines) + "not json\n")
    replayed = deployment.cli("replay", str(replay_file))
    assert replayed.returncode == 0, replayed.stderr
    assert "produced 3 events; 1 bad lines skipped" in replayed.stderr

    worker, port = deployment.start_worker()
    events = [
        chat_message(f"p{i}", b, "buyer", start + 2000 + i, agent=f"{shop}:a", shop=shop)
        for i, b in enumerate(buyers[2:])
    ]
    events += [chat_message("p9", buyers[0], "agent", start + 10_000, agent=f"{shop}:a", shop=shop)]
    deployment.produce(events)

    def consultations() -> int:
        rows = deployment.stats(shop)["agents"]
        return sum(row["windows"]["28d"]["consultations"] for row in rows)

    wait_for(lambda: consultations() == 6, timeout=90, what="six consultations through SASL_SSL and rediss")
    row = deployment.stats(shop)["agents"][0]
    assert row["windows"]["28d"]["replied_consultations"] == 1
    assert row["waiting_buyers"] == 5
    letters = deployment.read_topic("deadletter", expected=1)
    assert [json.loads(r.value)["reason"] for r in letters] == ["future_ts"]

    # The web server listens on loopback only (127.0.0.1 is 0100007F in the kernel's table).
    assert listening_addresses(port) == {"0100007F"}

    deployment.stop_workers()  # the whole log, shutdown included
    assert worker.returncode == 0, f"the worker did not stop cleanly on SIGTERM: {worker.returncode}"
    log = next(deployment.tmp.glob(f"worker-{deployment.name}-0.log")).read_text(errors="replace")
    assert "[^Worker]: Ready" in log, log[-2000:]  # the log is the real one, at info level
    outputs = {
        "worker log": log,
        "topics create": created.stdout + created.stderr,
        "replay": replayed.stdout + replayed.stderr,
    }
    for where, text in outputs.items():
        for secret in secrets:
            assert secret not in text, f"a password appears in the {where}"
        for buyer in buyers:
            assert buyer not in text, f"buyer id {buyer} appears in the {where}"


def test_wrong_kafka_password_fails_fast_and_says_why(secure_deployment: Deployment) -> None:
    deployment = secure_deployment
    wrong = f"not-the-password-{deployment.name}"
    started = time.monotonic()
    result = subprocess.run(
        [str(KEFU), "topics", "create"],
        env=deployment.env() | {"KEFU_KAFKA_PASSWORD": wrong},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=deployment.tmp,
    )
    assert result.returncode == 1, result.stderr
    # One line naming the protocol, the user and the broker's verdict, well before any timeout.
    assert "cannot use Kafka over SASL_SSL as 'kefu' (SCRAM-SHA-256)" in result.stderr
    assert "Authentication failed" in result.stderr
    assert time.monotonic() - started < 30
    assert "Traceback" not in result.stderr

    code, log = run_worker_until_exit(
        deployment, deployment.tmp / "worker-wrong-kafka.log", {"KEFU_KAFKA_PASSWORD": wrong}
    )
    assert code != 0
    assert "cannot use Kafka over SASL_SSL as 'kefu' (SCRAM-SHA-256)" in log and "Traceback" not in log
    assert wrong not in log + result.stderr + result.stdout


def test_wrong_redis_password_fails_fast_and_says_why(secure_deployment: Deployment) -> None:
    deployment = secure_deployment
    deployment.create_topics()
    password = redis_password(deployment.redis_url)
    wrong = f"not-the-password-{deployment.name}"
    bad_url = deployment.redis_url.replace(f":{password}@", f":{wrong}@")
    assert bad_url != deployment.redis_url

    stats = subprocess.run(
        [str(KEFU), "stats", "--shop", "s1", "--json"],
        env=deployment.env() | {"KEFU_REDIS_URL": bad_url},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=deployment.tmp,
    )
    assert stats.returncode == 1
    assert "Redis refused the login" in stats.stderr
    assert "Traceback" not in stats.stderr

    code, log = run_worker_until_exit(
        deployment, deployment.tmp / "worker-wrong-redis.log", {"KEFU_REDIS_URL": bad_url}
    )
    assert code != 0
    assert "Redis refused the login" in log and "Traceback" not in log
    for text in (log, stats.stderr, stats.stdout):
        assert wrong not in text and password not in text


def test_web_server_binds_where_configured(deployment: Deployment) -> None:
    # The default is covered above (loopback only); this shows the check can tell the difference.
    # Any address but loopback takes an access file (test_access_end_to_end.py).
    access = deployment.tmp / "access.yaml"
    access.write_text("tokens: [{name: ops, role: admin, shops: '*', token: " + "t" * 32 + "}]\n")
    web = f"web: {{host: 0.0.0.0, access_file: {access}}}\n"
    deployment.config.write_text(deployment.config.read_text() + web)
    deployment.create_topics()
    _, port = deployment.start_worker()
    assert listening_addresses(port) == {"00000000"}
