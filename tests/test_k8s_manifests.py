"""Every document of every file in k8s/ is a valid Kubernetes 1.33 object (strict: no
misspelt field), and the deployment is wired the way the code expects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "k8s"
FILES = sorted(p for p in K8S.rglob("*") if p.suffix in (".yaml", ".yml"))


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def all_documents() -> list[dict[str, Any]]:
    return [d for p in FILES for d in documents(p)]


def find(kind: str, name: str) -> dict[str, Any]:
    return next(d for d in all_documents() if d["kind"] == kind and d["metadata"]["name"] == name)


def test_there_are_manifests() -> None:
    assert FILES, "k8s/ has no manifests"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_document_validates_strictly(path: Path) -> None:
    docs = documents(path)
    assert docs, f"{path} is empty"
    for doc in docs:
        kubernetes_validate.validate(doc, "1.33.0", strict=True)


def test_gpu_catalog_configmap_is_the_packaged_catalog() -> None:
    packaged = (ROOT / "app" / "catalog" / "gpu_catalog.yaml").read_text()
    assert find("ConfigMap", "mlpatron-gpu-catalog")["data"]["gpu_catalog.yaml"] == packaged
    config = find("ConfigMap", "mlpatron-config")["data"]
    assert config["GPU_CATALOG_PATH"] == "/etc/mlpatron/catalog/gpu_catalog.yaml"
    for name in ("mlpatron-api", "mlpatron-watcher"):
        pod = find("Deployment", name)["spec"]["template"]["spec"]
        mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
        assert mounts["gpu-catalog"] == "/etc/mlpatron/catalog"


def test_secrets_are_references_not_values() -> None:
    assert not [d for d in all_documents() if d["kind"] == "Secret"]
    for name in ("mlpatron-api", "mlpatron-watcher"):
        env = {e["name"]: e for e in find("Deployment", name)["spec"]["template"]["spec"]["containers"][0]["env"]}
        for key in ("DATABASE_URL", "REDIS_URL", "MLFLOW_TRACKING_URI", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"):
            assert "value" not in env[key] and env[key]["valueFrom"]["secretKeyRef"]["key"] == key


def test_api_probes_resources_and_watcher_command() -> None:
    api = find("Deployment", "mlpatron-api")["spec"]["template"]["spec"]["containers"][0]
    # A Redis outage degrades the API (README, "When Redis is away"): it must not drop every pod.
    assert api["readinessProbe"]["httpGet"]["path"] == "/ready?degraded=ok"
    assert api["livenessProbe"]["httpGet"]["path"] == "/health"
    assert api["resources"]["requests"]["cpu"]  # the HPA scales on CPU utilisation of requests
    assert "--api-only" in api["args"]
    hpa = find("HorizontalPodAutoscaler", "mlpatron-api")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "mlpatron-api"
    watcher = find("Deployment", "mlpatron-watcher")
    assert watcher["spec"]["replicas"] == 1
    assert watcher["spec"]["template"]["spec"]["containers"][0]["args"] == ["mlpatron", "watcher"]


def test_rbac_is_limited_to_the_jobs_namespace() -> None:
    role = find("Role", "mlpatron-jobs")
    assert role["metadata"]["namespace"] == "mlpatron-jobs"
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"])): set(r["verbs"]) for r in role["rules"]}
    assert rules == {
        (("batch",), ("jobs",)): {"create", "get", "list", "watch", "delete"},
        (("",), ("pods", "pods/log")): {"get", "list", "watch"},
        (("",), ("events",)): {"get", "list", "watch"},
    }
    assert not [d for d in all_documents() if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]


def test_experiment_pods_cannot_reach_private_addresses() -> None:
    policy = find("NetworkPolicy", "experiment-pods")
    assert policy["spec"]["podSelector"]["matchExpressions"] == [{"key": "mlpatron.io/job-id", "operator": "Exists"}]
    assert policy["spec"]["ingress"] == []
    blocks = [peer["ipBlock"] for rule in policy["spec"]["egress"] for peer in rule["to"] if "ipBlock" in peer]
    v4 = next(b for b in blocks if b["cidr"] == "0.0.0.0/0")
    assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= set(v4["except"])
