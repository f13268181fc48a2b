"""Consistency checks for the Kubernetes manifests in deploy/k8s (pyyaml only, no cluster)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"


def load(name: str) -> dict[str, Any]:
    docs = [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]
    assert len(docs) == 1, name
    doc = docs[0]
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="module")
def sts() -> dict[str, Any]:
    return load("statefulset.yaml")


@pytest.fixture(scope="module")
def container(sts: dict[str, Any]) -> dict[str, Any]:
    (only,) = sts["spec"]["template"]["spec"]["containers"]
    assert isinstance(only, dict)
    return only


@pytest.fixture(scope="module")
def env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    entries = container["env"]
    names = [e["name"] for e in entries]
    assert len(names) == len(set(names)), "duplicate env vars"
    return {e["name"]: e for e in entries}


def metrics_port(container: dict[str, Any]) -> dict[str, Any]:
    (port,) = [p for p in container["ports"] if p.get("name") == "metrics"]
    assert isinstance(port, dict)
    return port


def resolves_to(container: dict[str, Any], port: int | str) -> int:
    """A probe/target port (number or name) as a container port number."""
    if isinstance(port, int):
        return port
    (match,) = [p["containerPort"] for p in container["ports"] if p.get("name") == port]
    assert isinstance(match, int)
    return match


def test_kustomization_lists_every_manifest() -> None:
    kustomization = load("kustomization.yaml")
    assert "namespace" not in kustomization  # namespace-agnostic base
    resources = set(kustomization["resources"])
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert resources == manifests
    for manifest in manifests:
        assert "namespace" not in load(manifest)["metadata"], manifest


def test_statefulset_basics(sts: dict[str, Any], container: dict[str, Any]) -> None:
    assert sts["kind"] == "StatefulSet"
    assert sts["spec"]["replicas"] >= 2
    assert container["image"] == "ghcr.io/caseclock/caseclock:0.1.0"
    assert container["command"] == ["caseclock", "worker"]
    assert metrics_port(container)["containerPort"] == 6066
    resources = container["resources"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= resources[kind].keys(), kind


def test_probes_hit_the_metrics_port(container: dict[str, Any]) -> None:
    port = metrics_port(container)["containerPort"]
    expected = {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    for probe, path in expected.items():
        get = container[probe]["httpGet"]
        assert get["path"] == path, probe
        assert resolves_to(container, get["port"]) == port, probe
    if "startupProbe" in container:
        assert resolves_to(container, container["startupProbe"]["httpGet"]["port"]) == port


def test_web_server_listens_on_the_metrics_port(
    container: dict[str, Any], env: dict[str, dict[str, Any]]
) -> None:
    assert int(env["CASECLOCK_WEB_PORT"]["value"]) == metrics_port(container)["containerPort"]
    assert env["CASECLOCK_WEB_HOST"]["value"] == "0.0.0.0"


def test_scrape_annotations_match_port(sts: dict[str, Any], container: dict[str, Any]) -> None:
    annotations = sts["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == metrics_port(container)["containerPort"]
    assert annotations["prometheus.io/path"] == "/metrics"


def test_selectors_match_pod_labels(sts: dict[str, Any], container: dict[str, Any]) -> None:
    pod_labels = sts["spec"]["template"]["metadata"]["labels"]
    selector = sts["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()

    service = load("service.yaml")
    assert service["spec"]["clusterIP"] == "None"
    assert sts["spec"]["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (svc_port,) = service["spec"]["ports"]
    assert svc_port["name"] == "metrics"
    assert svc_port["port"] == 6066
    assert resolves_to(container, svc_port.get("targetPort", svc_port["port"])) == 6066

    monitor = load("podmonitor.yaml")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["kind"] == "PodMonitor"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == metrics_port(container)["name"]
    assert endpoint["path"] == "/metrics"
    # the alert rules select job="caseclock"
    assert pod_labels[monitor["spec"]["jobLabel"]] == "caseclock"


def test_policy_configmap_mounted_at_policy_file(
    sts: dict[str, Any], container: dict[str, Any], env: dict[str, dict[str, Any]]
) -> None:
    policy_file = Path(env["CASECLOCK_POLICY_FILE"]["value"])
    configmap = load("configmap-policy.yaml")
    volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
    found = False
    for mount in container["volumeMounts"]:
        volume = volumes.get(mount["name"])
        if not volume or "configMap" not in volume:
            continue
        assert volume["configMap"]["name"] == configmap["metadata"]["name"]
        if "subPath" in mount:
            key, target = mount["subPath"], Path(mount["mountPath"])
        else:
            items = {i["path"]: i["key"] for i in volume["configMap"].get("items", [])}
            relative = policy_file.relative_to(mount["mountPath"]).as_posix()
            key, target = items.get(relative, relative), Path(mount["mountPath"]) / relative
        if target == policy_file:
            assert key in configmap["data"], key
            policy = tomllib.loads(configmap["data"][key])
            assert set(policy["plans"]["support-plus"]["priorities"]) == {"1", "2", "3"}
            found = True
    assert found, f"no ConfigMap key is mounted at {policy_file}"


def test_data_volume_is_the_rocksdb_store(
    sts: dict[str, Any], container: dict[str, Any], env: dict[str, dict[str, Any]]
) -> None:
    assert env["CASECLOCK_STORE"]["value"].startswith("rocksdb://")
    data_dir = env["CASECLOCK_DATA_DIR"]["value"]
    assert data_dir == "/var/lib/caseclock"
    claims = {c["metadata"]["name"] for c in sts["spec"]["volumeClaimTemplates"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts[data_dir] in claims


def test_password_from_secret(env: dict[str, dict[str, Any]]) -> None:
    password = env["CASECLOCK_SASL_PASSWORD"]
    assert "value" not in password
    ref = password["valueFrom"]["secretKeyRef"]
    assert ref["name"]
    assert ref["key"]


def test_env_values_are_strings(env: dict[str, dict[str, Any]]) -> None:
    """Kubernetes rejects non-string env values (e.g. an unquoted port number)."""
    for name, entry in env.items():
        assert name.startswith("CASECLOCK_"), name
        if "value" in entry:
            assert isinstance(entry["value"], str), name
