"""deploy/k8s/ manifests agree with each other and with the code."""

from __future__ import annotations

from typing import Any

from config.settings import settings_from_yaml
from tests.deploy.tools import (
    DEFAULT_WEB_PORT,
    DEPLOY,
    load_yaml,
    load_yaml_documents,
    settings_environment_variables,
)

K8S = DEPLOY / "k8s"


def manifests() -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in load_yaml_documents(path):
            out[(doc["kind"], doc["metadata"]["name"])] = doc
    return out


def deployment() -> dict[str, Any]:
    return manifests()[("Deployment", "kefu-pulse")]


def worker_container() -> dict[str, Any]:
    (container,) = deployment()["spec"]["template"]["spec"]["containers"]
    return dict(container)


def container_port(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container["ports"] if p.get("name") == port]
    return int(number)


def test_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    resources = load_yaml(K8S / "kustomization.yaml")["resources"]
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert set(resources) == on_disk
    namespaces = {doc["metadata"].get("namespace") for doc in manifests().values()} - {None}
    assert namespaces == {load_yaml(K8S / "kustomization.yaml")["namespace"]}


def test_worker_runs_the_worker_command_on_the_default_port() -> None:
    container = worker_container()
    assert container["args"] == ["kefu-pulse", "worker", "-l", "info"]
    assert [p["containerPort"] for p in container["ports"]] == [DEFAULT_WEB_PORT]


def test_probes_hit_healthz_on_the_web_port() -> None:
    container = worker_container()
    for probe in ("livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == "/healthz", probe
        assert container_port(container, get["port"]) == DEFAULT_WEB_PORT, probe
    # A dependency outage must not restart every worker before readiness has reacted.
    liveness, readiness = container["livenessProbe"], container["readinessProbe"]
    assert (
        liveness["periodSeconds"] * liveness["failureThreshold"]
        > readiness["periodSeconds"] * readiness["failureThreshold"]
    )


def test_resources_have_requests_and_limits() -> None:
    for container in [
        worker_container(),
        *manifests()[("Job", "kefu-pulse-topics")]["spec"]["template"]["spec"]["containers"],
    ]:
        resources = container["resources"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources[kind]), (container["name"], kind)


def test_environment_names_exist_and_the_redis_url_is_a_secret() -> None:
    env = {item["name"]: item for item in worker_container()["env"]}
    assert set(env) <= settings_environment_variables()
    reference = env["KEFU_REDIS_URL"]["valueFrom"]["secretKeyRef"]
    assert "value" not in env["KEFU_REDIS_URL"]
    secret = load_yaml(DEPLOY / "k8s" / "secret.example.yaml")
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == reference["name"]
    assert reference["key"] in secret["stringData"]


def test_config_map_is_a_valid_kefu_yaml_that_binds_every_interface() -> None:
    container = worker_container()
    env = {item["name"]: item.get("value") for item in container["env"]}
    volumes = {v["name"]: v for v in deployment()["spec"]["template"]["spec"]["volumes"]}
    (mount,) = [m for m in container["volumeMounts"] if "configMap" in volumes[m["name"]]]
    config_map = manifests()[("ConfigMap", volumes[mount["name"]]["configMap"]["name"])]
    (key,) = config_map["data"]
    assert env["KEFU_CONFIG"] == f"{mount['mountPath']}/{key}"
    settings = settings_from_yaml(config_map["data"][key], "configmap.yaml")
    assert settings.web.host == "0.0.0.0"
    assert settings.web.port == container_port(container, "http")


def test_service_exposes_the_port_to_prometheus() -> None:
    service = manifests()[("Service", "kefu-pulse")]
    labels = deployment()["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    (port,) = service["spec"]["ports"]
    assert port["port"] == DEFAULT_WEB_PORT
    assert container_port(worker_container(), port["targetPort"]) == DEFAULT_WEB_PORT
    # /metrics takes the metrics token, which annotation-based scraping cannot send: every
    # worker was a 401 and KefuWorkerDown fired for each (found in review). deploy/README.md
    # gives the job with its token instead.
    assert "prometheus.io/scrape" not in service["metadata"].get("annotations", {})


def test_selectors_match_the_worker_pods() -> None:
    labels = deployment()["spec"]["template"]["metadata"]["labels"]
    assert deployment()["spec"]["selector"]["matchLabels"].items() <= labels.items()
    budget = manifests()[("PodDisruptionBudget", "kefu-pulse")]
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_pods_run_as_the_images_non_root_user() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    (user,) = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("USER ")]
    for kind, name in (("Deployment", "kefu-pulse"), ("Job", "kefu-pulse-topics")):
        context = manifests()[(kind, name)]["spec"]["template"]["spec"]["securityContext"]
        assert context["runAsNonRoot"] is True and str(context["runAsUser"]) == user, name
