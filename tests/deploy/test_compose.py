"""deploy/Dockerfile and deploy/compose.yaml agree with each other and with the code."""

from __future__ import annotations

import base64
import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest

from config.settings import load_settings
from tests.deploy.tools import (
    DEFAULT_WEB_PORT,
    DEPLOY,
    ROOT,
    load_yaml,
    settings_environment_variables,
)

DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
GRAFANA_DASHBOARDS = DEPLOY / "grafana" / "dashboards"
GRAFANA_PROVISIONING = DEPLOY / "grafana" / "provisioning"
WORKER_COMMAND = ["kefu-pulse", "worker", "-l", "info"]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines()]
    pairs = [line.split(None, 1) for line in lines if line and not line.startswith("#")]
    return [(pair[0].upper(), pair[1] if len(pair) > 1 else "") for pair in pairs]


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    start = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[start:]


def services() -> dict[str, Any]:
    return dict(load_yaml(COMPOSE)["services"])


def workers() -> dict[str, Any]:
    return {name: s for name, s in services().items() if name.startswith("kefu-worker")}


def bind_mounts(service: dict[str, Any]) -> list[tuple[Path, str]]:
    out = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            out.append(((DEPLOY / source).resolve(), target))
    return out


def test_image_runs_the_worker_as_a_non_root_user() -> None:
    stage = final_stage()
    assert stage[0] == ("FROM", "python:3.11-slim")
    (user,) = [args for op, args in stage if op == "USER"]
    assert user.split(":")[0] not in {"root", "0"}
    (cmd,) = [args for op, args in stage if op == "CMD"]
    assert json.loads(cmd) == WORKER_COMMAND  # exec form is a JSON array
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert WORKER_COMMAND[0] in scripts


def test_image_exposes_and_health_checks_the_default_web_port() -> None:
    stage = final_stage()
    assert [args for op, args in stage if op == "EXPOSE"] == [str(DEFAULT_WEB_PORT)]
    (check,) = [args for op, args in stage if op == "HEALTHCHECK"]
    assert "/healthz" in check and f"'{DEFAULT_WEB_PORT}'" in check


def test_image_copies_only_files_that_exist_and_the_context_keeps() -> None:
    kept = [
        line[1:].rstrip("/")
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    for op, args in instructions():
        if op != "COPY" or args.startswith("--from"):
            continue
        *sources, _ = shlex.split(args)
        for source in sources:
            assert (ROOT / source).exists(), source
            assert any(source == k or source.startswith(k + "/") for k in kept), f"{source} is ignored"


def test_the_image_default_config_binds_every_interface() -> None:
    (copy,) = [args for op, args in final_stage() if op == "COPY" and "kefu.yaml" in args]
    source, target = shlex.split(copy)
    (env,) = [args for op, args in final_stage() if op == "ENV" and "KEFU_CONFIG" in args]
    assert f"KEFU_CONFIG={target}" in env
    settings = load_settings({"KEFU_CONFIG": str(ROOT / source)})
    assert settings.web.host == "0.0.0.0" and settings.web.port == DEFAULT_WEB_PORT


def test_the_stack_has_every_part() -> None:
    names = set(services())
    assert {"kafka", "redis", "prometheus", "alertmanager", "grafana"} <= names
    assert len(workers()) == 2
    assert services()["kafka"]["image"].startswith("apache/kafka:")
    for name, dependencies in ((n, s.get("depends_on", {})) for n, s in services().items()):
        assert set(dependencies) <= names, name


def test_kafka_is_a_single_kraft_node_of_the_tested_version() -> None:
    kafka = services()["kafka"]
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    for key in ("OFFSETS_TOPIC", "TRANSACTION_STATE_LOG", "SHARE_COORDINATOR_STATE_TOPIC"):
        assert env[f"KAFKA_{key}_REPLICATION_FACTOR"] == 1
    pom = (DEPLOY / "local" / "kafka-pom.xml").read_text()
    (version,) = re.findall(r"<kafka.version>(.+)</kafka.version>", pom)
    assert kafka["image"] == f"apache/kafka:{version}"
    advertised = env["KAFKA_ADVERTISED_LISTENERS"].split("://", 1)[1]
    for name, worker in workers().items():
        assert worker["environment"]["KEFU_KAFKA_BOOTSTRAP"] == advertised, name


def test_redis_persists_with_aof_on_a_volume() -> None:
    redis = services()["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    (data,) = [v for v in redis["volumes"] if v.endswith(":/data")]
    assert data.split(":")[0] in load_yaml(COMPOSE)["volumes"]
    for name, worker in workers().items():
        assert worker["environment"]["KEFU_REDIS_URL"].startswith("redis://redis:6379/"), name


@pytest.mark.parametrize("name", ["kefu-worker-1", "kefu-worker-2", "kefu-topics"])
def test_workers_use_only_settings_environment_variables(name: str) -> None:
    environment = services()[name]["environment"]
    assert set(environment) <= settings_environment_variables()
    assert {"KEFU_KAFKA_BOOTSTRAP", "KEFU_REDIS_URL", "KEFU_CONFIG"} <= settings_environment_variables()


def test_workers_mount_a_config_that_serves_the_published_port() -> None:
    for name, worker in workers().items():
        (config,) = [
            source for source, target in bind_mounts(worker) if target == worker["environment"]["KEFU_CONFIG"]
        ]
        settings = load_settings({"KEFU_CONFIG": str(config)})
        assert settings.web.host == "0.0.0.0", name
        assert settings.web.port == DEFAULT_WEB_PORT
        (published,) = worker["ports"]
        assert published.split(":")[1] == str(settings.web.port), name
        assert worker.get("healthcheck", {}).get("disable") is not True, name
        assert worker["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (DEPLOY / worker["build"]["context"] / worker["build"]["dockerfile"]).resolve() == DOCKERFILE


def test_every_mounted_file_exists_and_every_volume_is_declared() -> None:
    declared = set(load_yaml(COMPOSE)["volumes"])
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source}"
            else:
                assert source in declared, f"{name}: {source}"


def test_prometheus_loads_the_mounted_rules_and_scrapes_every_worker() -> None:
    prometheus = services()["prometheus"]
    mounts = {target: source for source, target in bind_mounts(prometheus)}
    (flag,) = [arg for arg in prometheus["command"] if arg.startswith("--config.file=")]
    config_target = flag.split("=", 1)[1]
    config_source = mounts[config_target]
    config = load_yaml(config_source)
    for rule_file in config["rule_files"]:
        # Relative rule paths resolve against the config file, in the container as here.
        target = str(Path(config_target).parent / rule_file)
        assert mounts[target] == (config_source.parent / rule_file).resolve()

    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "kefu-pulse"]
    targets = {t for static in job["static_configs"] for t in static["targets"]}
    assert targets == {f"{name}:{DEFAULT_WEB_PORT}" for name in workers()}
    (alerting,) = config["alerting"]["alertmanagers"]
    assert alerting["static_configs"][0]["targets"] == ["alertmanager:9093"]
    assert "alertmanager" in services()


def test_alertmanager_mounts_the_checked_configuration() -> None:
    alertmanager = services()["alertmanager"]
    mounts = {target: source for source, target in bind_mounts(alertmanager)}
    (flag,) = [arg for arg in alertmanager["command"] if arg.startswith("--config.file=")]
    assert mounts[flag.split("=", 1)[1]] == DEPLOY / "alertmanager" / "alertmanager.yml"


def test_grafana_provisioning_points_at_the_compose_services_and_mounts() -> None:
    compose = load_yaml(COMPOSE)
    grafana_mounts = {
        (DEPLOY / source).resolve(): target
        for source, target, *_ in (m.split(":") for m in compose["services"]["grafana"]["volumes"])
        if source.startswith(".")
    }
    assert grafana_mounts[GRAFANA_PROVISIONING.resolve()] == "/etc/grafana/provisioning"

    (provider,) = load_yaml(GRAFANA_PROVISIONING / "dashboards" / "kefu-pulse.yml")["providers"]
    assert provider["options"]["path"] == grafana_mounts[GRAFANA_DASHBOARDS.resolve()]
    home = compose["services"]["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(provider["options"]["path"] + "/")
    assert (GRAFANA_DASHBOARDS / home.rsplit("/", 1)[1]).is_file()

    (source,) = load_yaml(GRAFANA_PROVISIONING / "datasources" / "prometheus.yml")["datasources"]
    assert source["type"] == "prometheus" and source["isDefault"] is True
    assert source["url"] == "http://prometheus:9090" and "prometheus" in compose["services"]
    scrape = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")["scrape_configs"]
    (kefu_job,) = [job for job in scrape if job["job_name"] == "kefu-pulse"]
    assert source["jsonData"]["timeInterval"] == kefu_job["scrape_interval"]
