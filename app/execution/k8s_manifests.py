"""Pure functions that turn a `JobSpec` into a `batch/v1` Job manifest (a plain dict).

Nothing here talks to a cluster, so every rule is unit-testable and every manifest can be
checked with `kubernetes-validate`. The Job:

* an init container (`K8S_CLONE_IMAGE`) clones `spec.repo_url` and checks out exactly
  `spec.commit_sha` into an `emptyDir` mounted at `/workspace`; URL and sha reach the fixed
  script as environment variables, never interpolated into a shell string;
* the main container runs `spec.image` with `/bin/sh -c <command>` in `/workspace`, the spec's
  environment (MLFLOW_* ...), GPU limits and CPU/memory from the catalog's machine type;
* placement (node selector, tolerations) from the catalog's GPU type, plus spot selection;
* `activeDeadlineSeconds` from the budget, `backoffLimit: 0`, `ttlSecondsAfterFinished`, no
  service-account token, no service links, no privilege escalation, no capabilities.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

from app.catalog.catalog import resolve_machine
from app.core.errors import DomainError
from app.execution.executor import JobSpec

JOB_ID_LABEL = "mlpatron.io/job-id"
RUN_ID_LABEL = "mlpatron.io/run-id"
KIND_LABEL = "mlpatron.io/kind"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "mlpatron"
MAIN_CONTAINER = "main"
CLONE_CONTAINER = "clone"
WORKSPACE = "/workspace"
GPU_RESOURCE = "nvidia.com/gpu"
CLONE_UID = 65532  # "nonroot" in distroless images; any non-zero uid works for git

# The init container's whole program. Inputs arrive as env vars ($REPO_URL, $COMMIT_SHA), so a
# hostile URL cannot inject shell. `umask 000` leaves the checkout writable by whatever user
# the experiment image runs as. A server that refuses to serve a bare sha falls back to a full
# fetch; the final check proves HEAD is exactly the requested commit.
CLONE_SCRIPT = """\
set -eu
umask 000
cd "$WORKSPACE"
git init -q .
git remote add origin "$REPO_URL"
if ! git fetch -q --depth 1 origin "$COMMIT_SHA"; then
  echo "shallow fetch of $COMMIT_SHA refused; fetching all refs" >&2
  git fetch -q --tags origin '+refs/heads/*:refs/remotes/origin/*'
fi
git -c advice.detachedHead=false checkout -q --detach "$COMMIT_SHA"
test "$(git rev-parse HEAD)" = "$COMMIT_SHA"
echo "checked out $COMMIT_SHA"
"""


class ManifestError(ValueError):
    """The spec cannot become a Job (bad image reference, unplaceable GPU type, ...)."""


# ------------------------------------------------------------------------------- config


def _env_map(raw: str) -> dict[str, str]:
    """`k=v,k2=v2` → dict (empty string → empty dict)."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected key=value, got {part!r}")
        out[key.strip()] = value.strip()
    return out


def _truthy(raw: str) -> bool:
    return raw.lower() in ("1", "true", "yes", "on")


def _env_tolerations(raw: str) -> tuple[dict[str, str], ...]:
    """`key=value:Effect` (operator Equal) or `key:Effect` (operator Exists), comma separated."""
    out: list[dict[str, str]] = []
    for part in filter(None, (p.strip() for p in raw.split(","))):
        head, sep, effect = part.rpartition(":")
        if not sep or not head:
            raise ValueError(f"expected key[=value]:Effect, got {part!r}")
        key, eq, value = head.partition("=")
        tol = {"key": key, "operator": "Equal" if eq else "Exists", "effect": effect}
        if eq:
            tol["value"] = value
        out.append(tol)
    return tuple(out)


@dataclass(frozen=True)
class KubernetesConfig:
    """Everything the Kubernetes executor and watcher read from the environment.

    K8S_NAMESPACE            namespace the Jobs run in (default mlpatron-jobs)
    K8S_CLONE_IMAGE          image with git for the init container (default alpine/git:2.47.2)
    K8S_DEFAULT_IMAGE        image for specs without one (MLproject python_env); default python:3.11-slim
    K8S_TTL_SECONDS          ttlSecondsAfterFinished (default 3600; logs are streamed out before)
    K8S_SPOT_NODE_SELECTOR   k=v[,k=v] added when spec.spot (default cloud.google.com/gke-spot=true)
    K8S_SPOT_TOLERATIONS     key[=value]:Effect[,...] added when spec.spot
                             (default cloud.google.com/gke-spot=true:NoSchedule)
    K8S_CPU_HEADROOM         fraction of the machine's vCPUs left for the node (default 0.1, >= 0.5 core)
    K8S_MEMORY_HEADROOM      fraction of the machine's memory left for the node (default 0.15, + 1 GiB)
    K8S_CPU_ONLY_CPU / K8S_CPU_ONLY_MEMORY   resources of a job without GPUs (default 2 / 4Gi)
    K8S_IMAGE_PULL_SECRETS   comma-separated secret names for private experiment images
    KUBECONFIG / K8S_CONTEXT kubeconfig file and context; K8S_IN_CLUSTER=1 forces the pod's
                             service account (default: in-cluster when KUBERNETES_SERVICE_HOST is set)
    K8S_ALLOW_LOCAL_REPOS=1  accept local paths / file:// repositories: only for the simulated
                             cluster of the tests, whose "kubelet" runs on the platform's machine
                             (a real cluster's init container cannot reach the API host's disk)
    """

    namespace: str = "mlpatron-jobs"
    clone_image: str = "alpine/git:2.47.2"
    default_image: str = "python:3.11-slim"
    ttl_seconds_after_finished: int = 3600
    spot_node_selector: dict[str, str] = field(default_factory=lambda: {"cloud.google.com/gke-spot": "true"})
    spot_tolerations: tuple[dict[str, str], ...] = (
        {"key": "cloud.google.com/gke-spot", "operator": "Equal", "value": "true", "effect": "NoSchedule"},
    )
    cpu_headroom: float = 0.1
    memory_headroom: float = 0.15
    cpu_only_cpu: str = "2"
    cpu_only_memory: str = "4Gi"
    image_pull_secrets: tuple[str, ...] = ()
    kubeconfig: str | None = None
    context: str | None = None
    in_cluster: bool | None = None  # None: decide from KUBERNETES_SERVICE_HOST
    allow_local_repos: bool = False

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> KubernetesConfig:
        env = os.environ if environ is None else environ
        d = cls()

        def get(name: str) -> str | None:
            value = env.get(name)
            return value if value not in (None, "") else None

        in_cluster_raw = get("K8S_IN_CLUSTER")
        secrets = get("K8S_IMAGE_PULL_SECRETS")
        selector, tolerations = get("K8S_SPOT_NODE_SELECTOR"), get("K8S_SPOT_TOLERATIONS")
        return cls(
            namespace=get("K8S_NAMESPACE") or d.namespace,
            clone_image=get("K8S_CLONE_IMAGE") or d.clone_image,
            default_image=get("K8S_DEFAULT_IMAGE") or d.default_image,
            ttl_seconds_after_finished=int(get("K8S_TTL_SECONDS") or d.ttl_seconds_after_finished),
            spot_node_selector=_env_map(selector) if selector is not None else d.spot_node_selector,
            spot_tolerations=_env_tolerations(tolerations) if tolerations is not None else d.spot_tolerations,
            cpu_headroom=float(get("K8S_CPU_HEADROOM") or d.cpu_headroom),
            memory_headroom=float(get("K8S_MEMORY_HEADROOM") or d.memory_headroom),
            cpu_only_cpu=get("K8S_CPU_ONLY_CPU") or d.cpu_only_cpu,
            cpu_only_memory=get("K8S_CPU_ONLY_MEMORY") or d.cpu_only_memory,
            image_pull_secrets=tuple(s.strip() for s in (secrets or "").split(",") if s.strip()),
            kubeconfig=get("KUBECONFIG"),
            context=get("K8S_CONTEXT"),
            in_cluster=None if in_cluster_raw is None else _truthy(in_cluster_raw),
            allow_local_repos=_truthy(get("K8S_ALLOW_LOCAL_REPOS") or ""),
        )


# ------------------------------------------------------------------------------- validation

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_SHA = re.compile(r"^([0-9a-f]{40}|[0-9a-f]{64})$")

# The grammar of github.com/distribution/reference (what the kubelet / containerd accept).
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN = rf"(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(rf"^(?P<name>{_NAME})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$")


def validate_image_reference(image: str) -> str:
    """Return `image` if it is a syntactically valid container image reference; else raise."""
    if not isinstance(image, str) or not image:
        raise ManifestError("invalid image reference: empty")
    match = _REFERENCE.match(image)
    if match is None:
        raise ManifestError(
            f"invalid image reference {image!r}: expected [registry[:port]/]name[:tag][@digest] "
            "with a lowercase repository name (e.g. 'pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime')"
        )
    if len(match.group("name")) > 255:
        raise ManifestError(f"invalid image reference {image!r}: repository name longer than 255 characters")
    return image


def _dns_part(text: str, limit: int) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())[:limit]


def job_name(spec: JobSpec) -> str:
    """`mlp-<kind>-<first 8 of job id>-<suffix>`, a DNS-1123 label.

    The suffix looks random but is a hash of the whole job id: a resubmit of the same job
    (a retried request, a second replica) collides with the first Job (409 AlreadyExists), which
    the executor adopts, so one job id can never create two Jobs.
    """
    kind = _dns_part(spec.kind, 20) or "job"
    short = _dns_part(spec.job_id, 8) or "x"
    suffix = hashlib.sha256(spec.job_id.encode()).hexdigest()[:6]
    name = f"mlp-{kind}-{short}-{suffix}"
    assert _DNS_LABEL.match(name), name
    return name


def _label_value(what: str, value: str) -> str:
    if not _LABEL_VALUE.match(value) or len(value) > 63:
        raise ManifestError(f"{what} {value!r} cannot be a Kubernetes label value (<= 63 of [A-Za-z0-9-_.])")
    return value


def job_labels(spec: JobSpec) -> dict[str, str]:
    return {
        JOB_ID_LABEL: _label_value("job id", spec.job_id),
        RUN_ID_LABEL: _label_value("run id", spec.run_id),
        KIND_LABEL: _label_value("job kind", spec.kind),
        MANAGED_BY_LABEL: MANAGED_BY,
    }


# ------------------------------------------------------------------------------- resources


def _millicores(cores: float) -> str:
    return f"{max(math.floor(cores * 1000), 100)}m"


def _mebibytes(gib: float) -> str:
    return f"{max(math.floor(gib * 1024), 256)}Mi"


def machine_resources(vcpu: int, memory_gib: float, config: KubernetesConfig) -> dict[str, str]:
    """CPU and memory for the main container: the machine minus room for kubelet and daemonsets.

    Requests equal limits (Guaranteed QoS: the last pods a node evicts, and an OOM is the job's
    own memory use, reported as OOMKilled).
    """
    cpu = vcpu - max(vcpu * config.cpu_headroom, 0.5)
    memory = memory_gib * (1 - config.memory_headroom) - 1
    return {"cpu": _millicores(cpu), "memory": _mebibytes(memory)}


def _avoid_spot(config: KubernetesConfig) -> dict[str, Any] | None:
    """Node affinity keeping an on-demand job (priced on demand) off spot nodes."""
    if not config.spot_node_selector:
        return None
    expressions = [{"key": k, "operator": "NotIn", "values": [v]} for k, v in config.spot_node_selector.items()]
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": expressions}]}
        }
    }


def _placement(spec: JobSpec, config: KubernetesConfig) -> tuple[dict[str, str], list[dict[str, str]], dict[str, str]]:
    """(nodeSelector, tolerations, resource limits) from the GPU catalog and the spot flag."""
    node_selector: dict[str, str] = {}
    tolerations: list[dict[str, str]] = []
    if spec.gpu_type:
        if spec.gpu_count < 1:
            raise ManifestError(f"GPU type {spec.gpu_type!r} requested with gpu_count={spec.gpu_count}")
        try:
            gpu, machine = resolve_machine(spec.gpu_type, spec.gpu_count, spec.machine_type)
        except DomainError as exc:
            raise ManifestError(exc.message) from exc
        if not gpu.node_selector:
            raise ManifestError(
                f"GPU type {gpu.gpu_type!r} has no node_selector in the GPU catalog, so the Kubernetes "
                "executor cannot place it on a GPU node; add e.g. "
                "`node_selector: {cloud.google.com/gke-accelerator: ...}` to its catalog entry"
            )
        node_selector.update(gpu.node_selector)
        tolerations.extend(dict(t) for t in gpu.tolerations)
        tolerations.append({"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"})
        limits = machine_resources(machine.vcpu, machine.memory_gib, config)
        limits[GPU_RESOURCE] = str(spec.gpu_count)
    else:
        if spec.gpu_count:
            raise ManifestError(f"gpu_count={spec.gpu_count} requested without a GPU type")
        if spec.machine_type:
            raise ManifestError(f"machine type {spec.machine_type!r} requested without a GPU type")
        limits = {"cpu": config.cpu_only_cpu, "memory": config.cpu_only_memory}
    if spec.spot:
        node_selector.update(config.spot_node_selector)
        tolerations.extend(dict(t) for t in config.spot_tolerations)
    unique: list[dict[str, str]] = []
    for tol in tolerations:
        if tol not in unique:
            unique.append(tol)
    return node_selector, unique, limits


# ------------------------------------------------------------------------------- the Job


def _env_list(env: dict[str, str]) -> list[dict[str, str]]:
    out = []
    for name, value in env.items():
        if not _ENV_NAME.match(name):
            raise ManifestError(f"environment variable name {name!r} is not valid in Kubernetes")
        out.append({"name": name, "value": str(value)})
    return out


def _git_config_env(config: dict[str, str]) -> list[dict[str, str]]:
    """git configuration through the environment (git >= 2.31): the clone is pinned to the address
    the platform checked (`git.pinned_config`), so the cluster's DNS cannot send it elsewhere."""
    env = [{"name": "GIT_CONFIG_COUNT", "value": str(len(config))}] if config else []
    for i, (key, value) in enumerate(sorted(config.items())):
        env += [{"name": f"GIT_CONFIG_KEY_{i}", "value": key}, {"name": f"GIT_CONFIG_VALUE_{i}", "value": value}]
    return env


def _clone_container(spec: JobSpec, config: KubernetesConfig) -> dict[str, Any]:
    return {
        "name": CLONE_CONTAINER,
        "image": validate_image_reference(config.clone_image),
        "command": ["/bin/sh", "-c", CLONE_SCRIPT],
        "env": [
            {"name": "REPO_URL", "value": spec.repo_url},
            {"name": "COMMIT_SHA", "value": spec.commit_sha},
            {"name": "WORKSPACE", "value": WORKSPACE},
            {"name": "HOME", "value": "/tmp"},
            {"name": "GIT_TERMINAL_PROMPT", "value": "0"},
            *_git_config_env(spec.extra.get("git_config") or {}),
        ],
        "workingDir": WORKSPACE,
        "volumeMounts": [{"name": "workspace", "mountPath": WORKSPACE}, {"name": "clone-tmp", "mountPath": "/tmp"}],
        "resources": {
            "requests": {"cpu": "500m", "memory": "512Mi"},
            "limits": {"cpu": "500m", "memory": "512Mi"},
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": CLONE_UID,
            "runAsGroup": CLONE_UID,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def _check_source(spec: JobSpec, config: KubernetesConfig) -> None:
    local = re.match(r"^(/|file:///)\S+$", spec.repo_url or "")
    if not (config.allow_local_repos and local) and not re.match(r"^https?://[^\s/]+/\S+$", spec.repo_url or ""):
        raise ManifestError(
            f"repository URL {spec.repo_url!r} cannot be cloned inside the cluster (need http(s)://host/path)"
        )
    if not _SHA.match(spec.commit_sha or ""):
        raise ManifestError(f"commit {spec.commit_sha!r} is not a full lowercase hex commit sha")


def build_job_manifest(spec: JobSpec, config: KubernetesConfig, *, name: str | None = None) -> dict[str, Any]:
    """The complete `batch/v1` Job for `spec`; raises `ManifestError` with a readable reason."""
    _check_source(spec, config)
    image = validate_image_reference(spec.image or config.default_image)
    if not isinstance(spec.deadline_seconds, int) or spec.deadline_seconds < 1:
        raise ManifestError(f"deadline_seconds must be a positive integer, not {spec.deadline_seconds!r}")
    if not _DNS_LABEL.match(config.namespace):
        raise ManifestError(f"namespace {config.namespace!r} is not a DNS-1123 label")
    node_selector, tolerations, limits = _placement(spec, config)
    labels = job_labels(spec)
    name = name or job_name(spec)

    env = dict(spec.env)
    env.setdefault("PYTHONUNBUFFERED", "1")  # logs stream live instead of in 8 KiB bursts
    main = {
        "name": MAIN_CONTAINER,
        "image": image,
        "command": ["/bin/sh", "-c", spec.command],
        "workingDir": WORKSPACE,
        "env": _env_list(env),
        "resources": {"requests": dict(limits), "limits": dict(limits)},
        "volumeMounts": [{"name": "workspace", "mountPath": WORKSPACE}],
        "securityContext": {
            # Experiment images often expect root; they still get no privileges to escalate to.
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "initContainers": [_clone_container(spec, config)],
        "containers": [main],
        "volumes": [{"name": "workspace", "emptyDir": {}}, {"name": "clone-tmp", "emptyDir": {}}],
    }
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
    if tolerations:
        pod_spec["tolerations"] = tolerations
    if not spec.spot and (affinity := _avoid_spot(config)):
        pod_spec["affinity"] = affinity
    if config.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": s} for s in config.image_pull_secrets]
    annotations = {
        "mlpatron.io/repo-url": spec.repo_url,
        "mlpatron.io/commit-sha": spec.commit_sha,
    }
    if spec.gpu_type:
        annotations["mlpatron.io/gpu"] = f"{spec.gpu_count}x {spec.gpu_type} ({spec.machine_type or 'default'})"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": config.namespace, "labels": labels, "annotations": annotations},
        "spec": {
            "backoffLimit": 0,
            "completions": 1,
            "parallelism": 1,
            "activeDeadlineSeconds": spec.deadline_seconds,
            "ttlSecondsAfterFinished": config.ttl_seconds_after_finished,
            "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
        },
    }
