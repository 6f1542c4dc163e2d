"""The simulated cluster (`tests.k8s_fake.cluster`, its own process) under the real executor and watcher.

Nobody plays kubelet here: the cluster schedules the pod, runs the init container's clone
script against a git repository, runs the main container's command as a local process with the
manifest's environment, and turns its output and exit code into pod log and termination state.
Scenario rules inject what a real cluster does to jobs (Unschedulable, OOMKilled, deadline).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import kubernetes_validate
import pytest

from app.execution.executor import JobSpec
from app.execution.k8s_api import create_api_client
from app.execution.k8s_manifests import KubernetesConfig
from app.execution.kubernetes import KubernetesExecutor
from app.jobs.status import JobStatus, JobUpdate
from tests.execution.test_kubernetes import FAST, FAST_API, LifecycleSink, transitions, wait_status
from tests.helpers import eventually
from tests.k8s_fake.cluster import ClusterProcess
from tests.repos import Repo

SCRIPT = """import os, sys, time
print("run id", os.environ["MLFLOW_RUN_ID"], flush=True)
print("version", open("VERSION").read().strip(), flush=True)
print("pid", os.getpid(), flush=True)
print("to stderr", file=sys.stderr, flush=True)
time.sleep(float(sys.argv[2]))
sys.exit(int(sys.argv[1]))
"""
SCENARIO = {
    "defaults": {"pending_seconds": 0.1, "pull_seconds": 0.1},
    "rules": [
        {"match": {"command_contains": "unschedulable"}, "unschedulable_seconds": 0.5},
        {"match": {"command_contains": "oom"}, "oom_after_seconds": 0.5},
        {"match": {"command_contains": "deadline"}, "deadline_seconds": 1.5},
        {"match": {"command_contains": "no-image"}, "image_pull_backoff": True, "deadline_seconds": 1.0},
    ],
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterProcess]:
    process = ClusterProcess(tmp_path_factory.mktemp("cluster"), SCENARIO)
    yield process
    created = process.api("/_sim/created")
    process.stop()
    assert created
    for body in created:  # every Job the executor sent is a valid 1.33 Job
        kubernetes_validate.validate(body, "1.33.0", strict=True)


@pytest.fixture
async def executor(cluster: ClusterProcess, lsink: LifecycleSink) -> AsyncIterator[KubernetesExecutor]:
    config = KubernetesConfig(kubeconfig=str(cluster.kubeconfig), allow_local_repos=True, in_cluster=False)
    client = await create_api_client(config)
    ex = KubernetesExecutor(lsink, config, api_client=client, watch=True, watcher_options=FAST, api_options=FAST_API)
    yield ex
    await ex.close()
    await client.close()


@pytest.fixture
def lsink() -> LifecycleSink:
    return LifecycleSink()


@pytest.fixture
def repo(make_repo: Callable[..., Repo]) -> tuple[Repo, str]:
    """A repository whose pinned commit differs from its branch head (the clone must pin)."""
    repo = make_repo("experiment", {"train.py": SCRIPT, "VERSION": "pinned"})
    pinned = repo.git("rev-parse", "HEAD")
    repo.commit({"VERSION": "later"})
    return repo, pinned


def spec_for(repo: tuple[Repo, str], args: str, **changes: object) -> JobSpec:
    job_id = str(uuid.uuid4())
    base: dict[str, object] = dict(
        job_id=job_id, run_id=f"run-{job_id[:8]}", kind="dryrun", repo_url=str(repo[0].path), commit_sha=repo[1],
        command=f"python train.py {args}", env={"MLFLOW_RUN_ID": f"mlflow-{job_id[:6]}"}, deadline_seconds=60,
        image="ghcr.io/mlpatron/demo:1.0", gpu_type="l4", gpu_count=1,
    )  # fmt: skip
    return JobSpec(**(base | changes))  # type: ignore[arg-type]


async def run_to_end(executor: KubernetesExecutor, lsink: LifecycleSink, spec: JobSpec) -> JobUpdate:
    await executor.submit(spec)
    return await lsink.terminal(spec.job_id, within=30)


def pid_of(lines: list[str]) -> int:
    return int(next(line.split()[1] for line in lines if line.startswith("pid ")))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def gone(pid: int) -> None:
    """The kubelet killed the container's process (and reaped it)."""

    async def probe() -> bool:
        return alive(pid)

    await eventually(probe, lambda running: not running, 10)


async def test_job_runs_at_the_pinned_commit_with_its_environment(
    executor: KubernetesExecutor, lsink: LifecycleSink, repo: tuple[Repo, str]
) -> None:
    spec = spec_for(repo, "0 0 unschedulable")
    final = await run_to_end(executor, lsink, spec)
    assert final.status == JobStatus.SUCCEEDED, final
    lines = lsink.lines(spec.job_id, "stdout")
    assert lines[:2] == [f"run id mlflow-{spec.job_id[:6]}", "version pinned"]
    assert lines[3:] == ["to stderr"]
    infos = [u.pending_info or "" for u in lsink.updates(spec.job_id) if u.status == JobStatus.PENDING]
    assert any(i.startswith("Unschedulable: 0/4 nodes are available: 4 Insufficient nvidia.com/gpu") for i in infos)
    assert transitions(lsink.statuses(spec.job_id)) == [JobStatus.PENDING, JobStatus.RUNNING, JobStatus.SUCCEEDED]


async def test_exit_code_is_the_container_termination(
    executor: KubernetesExecutor, lsink: LifecycleSink, repo: tuple[Repo, str]
) -> None:
    spec = spec_for(repo, "3 0")
    final = await run_to_end(executor, lsink, spec)
    assert final.status == JobStatus.FAILED and final.error is not None
    assert final.error.container_terminated == {"reason": "Error", "exit_code": 3}
    assert final.error.k8s_job_condition is not None
    assert final.error.k8s_job_condition["reason"] == "BackoffLimitExceeded"


async def test_oom_kill_and_deadline_are_injected(
    executor: KubernetesExecutor, lsink: LifecycleSink, repo: tuple[Repo, str]
) -> None:
    oom, late = spec_for(repo, "0 30 oom", kind="funded"), spec_for(repo, "0 30 deadline")
    await executor.submit(oom)
    await executor.submit(late)
    oomed = await lsink.terminal(oom.job_id, within=30)
    assert oomed.error is not None and oomed.error.container_terminated == {"reason": "OOMKilled", "exit_code": 137}
    assert lsink.lines(oom.job_id, "stdout")[1] == "version pinned"  # it ran until the kill
    timed_out = await lsink.terminal(late.job_id, within=30)
    assert timed_out.status == JobStatus.FAILED and timed_out.error is not None
    assert (timed_out.error.platform or "").startswith("deadline exceeded")
    for spec in (oom, late):  # the kubelet killed the whole container
        await gone(pid_of(lsink.lines(spec.job_id, "stdout")))


async def test_image_pull_backoff_until_the_deadline(
    executor: KubernetesExecutor, lsink: LifecycleSink, repo: tuple[Repo, str]
) -> None:
    spec = spec_for(repo, "0 0 no-image")
    final = await run_to_end(executor, lsink, spec)
    assert final.status == JobStatus.FAILED and final.error is not None
    assert "ImagePullBackOff" in (final.error.platform or "")
    assert JobStatus.RUNNING not in lsink.statuses(spec.job_id)


async def test_cancel_deletes_the_job_and_kills_its_container(
    executor: KubernetesExecutor, lsink: LifecycleSink, repo: tuple[Repo, str], cluster: ClusterProcess
) -> None:
    spec = spec_for(repo, "0 60")
    handle = await executor.submit(spec)
    await wait_status(lsink, spec.job_id, JobStatus.RUNNING, 30)
    await lsink.wait_for(lambda: len(lsink.lines(spec.job_id, "stdout")) >= 3, 30)
    pid = pid_of(lsink.lines(spec.job_id, "stdout"))
    assert alive(pid)
    await executor.cancel(spec.job_id, handle)
    assert (await lsink.terminal(spec.job_id)).status == JobStatus.CANCELLED
    await gone(pid)
    url = f"{cluster.url}/apis/batch/v1/namespaces/mlpatron-jobs/jobs/{handle['name']}"
    await eventually(lambda: asyncio.to_thread(lambda: httpx.get(url).status_code), lambda code: code == 404, 10)


def test_scenario_rejects_unknown_keys(tmp_path: Path) -> None:
    from tests.k8s_fake.cluster import Scenario

    path = tmp_path / "bad.yaml"
    path.write_text("rules: [{match: {kind: funded}, oom_after: 1}]")
    with pytest.raises(ValueError, match="oom_after"):
        Scenario.load(str(path))
