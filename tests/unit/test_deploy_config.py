"""docker-compose.yml, the k8s manifests, the README and docs/operations.md against what the
worker really reads and exports."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from caseclock.core.policy import load_policy, policy_from_toml
from caseclock.live.config import SETTINGS, Config

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


def k8s(kind: str) -> dict[str, Any]:
    for f in sorted((ROOT / "deploy/k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(f.read_text()):
            if doc and doc.get("kind") == kind:
                return dict(doc)
    raise AssertionError(f"no {kind} in deploy/k8s")


def test_compose_has_the_whole_stack_with_pinned_images() -> None:
    services = compose()["services"]
    assert {"kafka", "worker", "demo-producer", "prometheus", "grafana"} <= set(services)
    for name, svc in services.items():
        image = svc.get("image", "")
        assert image and ":" in image and not image.endswith(":latest"), name


def test_compose_worker_environment_is_a_valid_config() -> None:
    services = compose()["services"]
    for name in ("worker", "demo-producer", "watch"):
        env = {k: str(v) for k, v in services[name]["environment"].items()}
        cfg = Config.from_env(env)  # unknown or malformed settings raise
        host = cfg.bootstrap_servers.split(":")[0]
        assert host in services, f"{name} points at {host}, not a compose service"
        load_policy(cfg.policy_file)
    worker = Config.from_env({k: str(v) for k, v in services["worker"]["environment"].items()})
    assert worker.web_host == "0.0.0.0"
    assert f"{worker.web_port}:{worker.web_port}" in services["worker"]["ports"]
    kafka_env = services["kafka"]["environment"]
    assert "PLAINTEXT://kafka:19092" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]
    assert worker.bootstrap_servers == "kafka:19092"


def test_compose_prometheus_scrapes_the_worker_port_and_grafana_is_provisioned() -> None:
    services = compose()["services"]
    prom_cfg = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    job = next(j for j in prom_cfg["scrape_configs"] if j["job_name"] == "caseclock")
    worker = Config.from_env({k: str(v) for k, v in services["worker"]["environment"].items()})
    assert job["dns_sd_configs"][0]["names"] == ["worker"]
    assert job["dns_sd_configs"][0]["port"] == worker.web_port
    assert job["metrics_path"] == "/metrics"
    assert "./deploy/prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    mounts = services["grafana"]["volumes"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in mounts
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in mounts
    assert (ROOT / "deploy/docker/Dockerfile").is_file()


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked() -> dict[str, str]:
    """requirements.lock: distribution name (normalised) -> exact version."""
    out: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep and re.fullmatch(r"[\w.+!-]+", version), f"not name==version: {line!r}"
        out[_normalised(name)] = version
    return out


def test_lock_file_pins_every_dependency_of_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock = locked()
    assert lock and "caseclock" not in lock
    text = (ROOT / "requirements.lock").read_text()
    names = [line.split("==")[0] for line in text.splitlines() if not line.startswith("#")]
    # In the order of deploy/local/lock.sh's `LC_ALL=C sort -f -t= -k1,1` (and pip freeze's).
    assert names == sorted(names, key=str.upper), "not sorted: run deploy/local/lock.sh"
    for spec in [*project["dependencies"], *project["optional-dependencies"]["dev"]]:
        found = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec)
        assert found is not None, spec
        name = _normalised(found.group(0))
        assert name in lock, f"{spec} is not in requirements.lock: run deploy/local/lock.sh"
        exact = re.search(r"==\s*([^\s,;]+)", spec)
        if exact:  # pinned in pyproject.toml too: the two agree
            assert lock[name] == exact.group(1), f"{spec}: requirements.lock has {lock[name]}"


def test_dockerfile_installs_the_locked_versions() -> None:
    text = (ROOT / "deploy/docker/Dockerfile").read_text()
    copied = [line.split()[1:-1] for line in text.splitlines() if line.startswith("COPY ")]
    assert any("requirements.lock" in sources for sources in copied)
    installs = re.findall(r"pip install ([^\n\\&]*)", text)
    assert installs and all(i.split()[:2] == ["-c", "requirements.lock"] for i in installs)


def test_setup_installs_the_locked_versions_and_again_when_the_lock_changes() -> None:
    text = (ROOT / "deploy/local/setup.sh").read_text()
    assert "pip install -q -c requirements.lock -e '.[dev]'" in text
    assert '[ requirements.lock -nt "$stamp" ]' in text
    lock_sh = ROOT / "deploy/local/lock.sh"
    assert os.access(lock_sh, os.X_OK) and "freeze --exclude-editable" in lock_sh.read_text()


def test_k8s_statefulset_matches_worker_settings() -> None:
    sts = k8s("StatefulSet")
    pod = sts["spec"]["template"]
    container = pod["spec"]["containers"][0]
    env = {}
    for e in container["env"]:
        env[e["name"]] = e.get("value", "secret-from-ref")
    cfg = Config.from_env(env)
    port = next(p["containerPort"] for p in container["ports"] if p["name"] == "metrics")
    assert cfg.web_port == port and cfg.web_host == "0.0.0.0"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    assert cfg.store == "rocksdb://"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert cfg.data_dir in mounts
    assert cfg.policy_file is not None and Path(cfg.policy_file).parent.as_posix() in mounts
    assert cfg.security_protocol == "SASL_SSL"
    secret = next(e for e in container["env"] if e["name"] == "CASECLOCK_SASL_PASSWORD")
    assert "secretKeyRef" in secret["valueFrom"]


def test_k8s_policy_configmap_is_a_valid_policy() -> None:
    cm = k8s("ConfigMap")
    (text,) = cm["data"].values()
    policy = policy_from_toml(text, "configmap")
    assert policy.plans["support-plus"].priorities == load_policy().plans["support-plus"].priorities


def settings_table() -> str:
    """The settings table of docs/operations.md, as generated from SETTINGS."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for s in SETTINGS:
        default = f"`{s.default}`" if s.default else "(empty)"
        rows.append(f"| `{s.env}` | {default} | {s.help} |")
    return "\n".join(rows) + "\n"


def metrics_table() -> str:
    """The metrics table of docs/operations.md, as generated from METRIC_DOCS."""
    from caseclock.live.metrics import METRIC_DOCS

    rows = ["| metric | type | labels | meaning |", "|---|---|---|---|"]
    for doc in METRIC_DOCS:
        rows.append(
            f"| `{doc.name}` | {doc.type} | {', '.join(doc.labels) or '-'} | {doc.meaning} |"
        )
    return "\n".join(rows) + "\n"


def test_operations_page_has_the_generated_settings_table() -> None:
    page = (ROOT / "docs/operations.md").read_text()
    expected = settings_table()
    assert expected in page, "docs/operations.md: replace its settings table by\n" + expected


def test_operations_page_has_the_generated_metrics_table() -> None:
    page = (ROOT / "docs/operations.md").read_text()
    expected = metrics_table()
    assert expected in page, "docs/operations.md: replace its metrics table by\n" + expected
