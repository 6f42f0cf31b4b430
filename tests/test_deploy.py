"""deploy/ and docker-compose.yml stay true to the service, read without Docker or a cluster: every PromQL
expression (alerts, dashboard, autoscaler) parses and uses only metrics and labels the service exposes; every
alert has a summary and a runbook entry in README.md; compose and the Kubernetes manifests set only real
settings and run real subcommands, on the ports their probes and scrape jobs use."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from bot.__main__ import SERVERS, parser
from bot.config import Settings
from bot.metrics import Metrics, create_metrics
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
TARGET_LABELS = {"job", "instance", "namespace", "pod"}  # added by Prometheus's scrape jobs, not the service


def exposed() -> dict[str, set[str]]:
    """Every series name the service's /metrics can show, with its labels (as create_metrics() builds them)."""
    metrics = create_metrics()
    series: dict[str, set[str]] = {"up": set()}  # Prometheus's own, per scrape target
    for field in fields(Metrics):
        if field.name == "registry":
            continue
        metric = getattr(metrics, field.name)
        labels = set(metric._labelnames)
        kind, name = metric._type, metric._name
        if kind == "counter":
            series[name + "_total"] = labels
        elif kind == "histogram":
            series |= {name + "_bucket": labels | {"le"}, name + "_sum": labels, name + "_count": labels}
        else:
            series[name] = labels
    return series


SERIES = exposed()


def check_promql(expr: str, where: str, templates: str = "") -> set[str]:
    """Parse `expr` and check its metrics and labels (and labels named in `templates`: legends, annotations)
    against the service's; returns the series it reads."""
    try:
        tree = promql_parser.parse(expr)
    except ValueError as error:
        raise AssertionError(f"{where}: {error}: {expr}") from error
    selectors: list[Any] = []
    groupings: list[str] = []

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            selectors.append(node)
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            groupings.extend(node.modifier.labels)
        elif isinstance(node, promql_parser.BinaryExpr) and node.modifier and node.modifier.matching:
            groupings.extend(node.modifier.matching.labels)

    promql_parser.walk(tree, pre_visit=visit)
    assert selectors, f"{where}: reads no metric: {expr}"
    available = set(TARGET_LABELS)
    for selector in selectors:
        assert selector.name in SERIES, f"{where}: {selector.name} is not in the service's /metrics"
        labels = SERIES[selector.name] | TARGET_LABELS
        for matcher in selector.matchers.matchers:
            assert matcher.name in labels, f"{where}: {selector.name} has no label {matcher.name!r}"
        available |= labels
    named = set(groupings) | set(re.findall(r"\{\{\s*\$?(?:labels\.)?([a-z_]+)\s*\}\}", templates)) - {"value"}
    assert named <= available, f"{where}: labels {named - available} are not on the metrics of {expr}"
    return {selector.name for selector in selectors}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def test_every_yaml_file_loads() -> None:
    files = [ROOT / "docker-compose.yml", *DEPLOY.rglob("*.yml"), *DEPLOY.rglob("*.yaml")]
    assert len(files) >= 12
    for path in files:
        documents = list(yaml.safe_load_all(path.read_text()))
        assert documents and all(isinstance(d, dict) for d in documents), path


def alert_rules() -> list[dict[str, Any]]:
    groups = load_yaml(DEPLOY / "prometheus" / "alerts.yml")["groups"]
    return [rule for group in groups for rule in group["rules"]]


def readme_anchors() -> set[str]:
    """GitHub's anchors of README.md's headings."""
    headings = re.findall(r"^#+ (.+)$", (ROOT / "README.md").read_text(), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_every_alert_parses_and_reads_what_the_service_exposes() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(set(names)) == len(names) >= 8
    for rule in rules:
        annotations = " ".join(rule["annotations"].values())
        check_promql(rule["expr"], rule["alert"], annotations)
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s")), rule["alert"]


def test_every_alert_has_a_summary_and_a_runbook_entry_in_the_readme() -> None:
    anchors = readme_anchors()
    for rule in alert_rules():
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        page, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert page == "README.md" and anchor in anchors, f"README.md has no runbook heading #{anchor}"


def test_the_asked_for_alerts_exist() -> None:
    read = {rule["alert"]: check_promql(rule["expr"], rule["alert"]) for rule in alert_rules()}
    wanted = {
        "autoresponder_replies_sent_total",  # no replies while messages arrive
        "autoresponder_first_response_seconds_bucket",
        "autoresponder_sla_breaches_total",
        "autoresponder_dead_letters_total",
        "autoresponder_llm_circuit_state",
        "autoresponder_queue_lag_messages",  # workers falling behind
        "autoresponder_incident_active",
    }
    assert wanted <= set().union(*read.values())


def dashboard() -> dict[str, Any]:
    return dict(json.loads((DEPLOY / "grafana" / "dashboards" / "autoresponder.json").read_text()))


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in board["panels"]:
        found += [panel, *panel.get("panels", [])]
    return [panel for panel in found if panel["type"] != "row"]


def test_every_dashboard_query_parses_and_reads_what_the_service_exposes() -> None:
    board = dashboard()
    read: set[str] = set()
    for panel in panels(board):
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            read |= check_promql(target["expr"], panel["title"], target.get("legendFormat", ""))
    # What it must answer: received vs sent, first response, auto-send share, review queue and SLA, queue lag,
    # dead letters, the model (latency, errors, cost, circuit), webhook rejections.
    for name in (
        "messages_received_total",
        "replies_sent_total",
        "first_response_seconds_bucket",
        "decisions_total",
        "review_queue_cases",
        "review_oldest_case_seconds",
        "sla_breaches_total",
        "queue_lag_messages",
        "dead_letters_total",
        "llm_request_duration_seconds_bucket",
        "llm_requests_total",
        "llm_cost_total",
        "llm_circuit_state",
        "webhook_rejections_total",
    ):
        assert "autoresponder_" + name in read, name
    ids = [panel["id"] for panel in board["panels"]]
    assert len(set(ids)) == len(ids)


def test_grafana_is_provisioned_with_the_dashboard_and_prometheus() -> None:
    compose = load_yaml(ROOT / "docker-compose.yml")["services"]
    mounts = dict(volume.split(":")[1::-1] for volume in compose["grafana"]["volumes"] if volume.startswith("./"))
    provisioning = ROOT / mounts["/etc/grafana/provisioning"]
    [source] = load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    [provider] = load_yaml(provisioning / "dashboards" / "autoresponder.yml")["providers"]
    assert (ROOT / mounts[provider["options"]["path"]] / "autoresponder.json").is_file()
    assert source["url"] == "http://prometheus:9090" and "prometheus" in compose
    uids = {panel["datasource"]["uid"] for panel in panels(dashboard())}
    assert uids == {source["uid"]}


def bot_command(command: list[str]) -> str:
    """The subcommand a container runs, checked by the CLI's own parser."""
    assert command[:3] == ["python", "-m", "bot"], command
    args = parser().parse_args(command[3:])
    assert args.command in SERVERS, command
    return f"{args.command}:{args.port}"


def test_compose_runs_real_subcommands_and_prometheus_scrapes_them() -> None:
    compose = load_yaml(ROOT / "docker-compose.yml")["services"]
    assert bot_command(compose["web"]["command"]) == "web:8080"
    assert bot_command(compose["worker"]["command"]) == "worker:8081"
    assert "replicas" in compose["worker"]["deploy"]
    assert any(volume.startswith("./deploy/prometheus:/etc/prometheus") for volume in compose["prometheus"]["volumes"])
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    assert [Path(f).name for f in config["rule_files"]] == ["alerts.yml"]
    assert all(f.startswith("/etc/prometheus/") for f in config["rule_files"])
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["autoresponder-web"]["static_configs"][0]["targets"] == ["web:8080"]
    [workers] = jobs["autoresponder-worker"]["dns_sd_configs"]
    assert workers["names"] == ["worker"] and workers["port"] == 8081
    dockerfile = (ROOT / "Dockerfile").read_text()
    bot_command(json.loads(re.findall(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE)[-1]))


@pytest.mark.parametrize(
    "path", [ROOT / "docker-compose.yml", *sorted(DEPLOY.rglob("*.y*ml"))], ids=lambda p: str(p.relative_to(ROOT))
)
def test_only_real_settings_are_set(path: Path) -> None:
    named = set(re.findall(r"\bBOT_([A-Z0-9_]+)", path.read_text()))
    assert {name.lower() for name in named} <= set(Settings.model_fields), path


def k8s(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


def test_k8s_settings_are_valid_and_the_pods_read_them() -> None:
    [config] = k8s("configmap.yaml")
    [secret] = k8s("secret.example.yaml")
    values = {key.removeprefix("BOT_").lower(): value for key, value in (config["data"] | secret["stringData"]).items()}
    settings = Settings(_env_file=None, **values)  # the values themselves are valid
    for name in ("web.yaml", "worker.yaml"):
        [deployment] = [d for d in k8s(name) if d["kind"] == "Deployment"]
        pod = deployment["spec"]["template"]["spec"]
        # SIGTERM: the batch in hand finishes within BOT_SHUTDOWN_TIMEOUT_S, before the pod is killed.
        assert pod["terminationGracePeriodSeconds"] > settings.shutdown_timeout_s
        [container] = pod["containers"]
        sources = {next(iter(item.values()))["name"] for item in container["envFrom"]}
        assert sources == {config["metadata"]["name"], secret["metadata"]["name"]}


def test_k8s_runs_real_subcommands_with_probes_on_their_ports() -> None:
    expected = {"web.yaml": "web", "worker.yaml": "worker"}
    for name, command in expected.items():
        [deployment] = [d for d in k8s(name) if d["kind"] == "Deployment"]
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        subcommand, port = bot_command(container["command"]).split(":")
        assert subcommand == command
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            check = container[probe]["httpGet"]
            assert check["path"] == path and ports[check["port"]] == int(port), (name, probe)
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"] == labels
    [service] = [d for d in k8s("web.yaml") if d["kind"] == "Service"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    kustomization = load_yaml(K8S / "kustomization.yaml")
    assert all((K8S / resource).is_file() for resource in kustomization["resources"])
    assert "secret.example.yaml" not in kustomization["resources"]  # a re-apply never overwrites the real one


def test_the_worker_autoscaler_reads_the_inbound_lag_through_the_adapter() -> None:
    [hpa] = k8s("hpa.yaml")
    [worker] = [d for d in k8s("worker.yaml") if d["kind"] == "Deployment"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == worker["metadata"]["name"]
    [metric] = hpa["spec"]["metrics"]
    wanted = metric["external"]["metric"]
    assert wanted["name"] in SERIES and set(wanted["selector"]["matchLabels"]) <= SERIES[wanted["name"]]
    [rule] = load_yaml(K8S / "prometheus-adapter-values.yaml")["rules"]["external"]
    assert rule["name"]["as"] == wanted["name"]
    matchers = ",".join(f'{k}="{v}"' for k, v in wanted["selector"]["matchLabels"].items())
    query = rule["metricsQuery"].replace("<<.Series>>", wanted["name"]).replace("<<.LabelMatchers>>", matchers)
    assert check_promql(query, "adapter metricsQuery") == {wanted["name"]}
    assert check_promql(rule["seriesQuery"], "adapter seriesQuery") == {wanted["name"]}
    scrape = {job["job_name"] for job in load_yaml(K8S / "prometheus-scrape.yaml")["scrape_configs"]}
    compose_jobs = {job["job_name"] for job in load_yaml(DEPLOY / "prometheus" / "prometheus.yml")["scrape_configs"]}
    assert scrape == compose_jobs - {"prometheus"}  # the same job names, which AutoresponderDown reads
