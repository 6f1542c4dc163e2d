"""The Kubernetes executor and watcher against a fake API server speaking the real protocol.

Every test plays scheduler and kubelet through `tests.k8s_fake.FakeKubernetes` and waits for
conditions (sink contents, fake state) with timeouts; every Job manifest a client sent to the
fake is validated with kubernetes-validate (strict, 1.33) when the test ends.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import kubernetes_validate
import pytest
from kubernetes_asyncio.client import ApiClient, Configuration

from app.execution.executor import JobSpec
from app.execution.k8s_api import KubeApi
from app.execution.k8s_logs import parse_log_timestamp
from app.execution.k8s_manifests import JOB_ID_LABEL, KubernetesConfig, ManifestError, job_name
from app.execution.k8s_status import derive_pending_info
from app.execution.k8s_watcher import KubernetesWatcher
from app.execution.kubernetes import KubernetesExecutor, KubernetesSubmitError
from app.jobs.status import STATUS_RANK, JobStatus, JobUpdate
from tests.execution.conftest import RecordingSink
from tests.k8s_fake import FakeKubernetes

NAMESPACE = "mlpatron-jobs"
FAST = {"backoff": 0.02, "max_backoff": 0.2, "log_drain_timeout": 5.0}
FAST_API = {"backoff": 0.01, "max_backoff": 0.05}
SHA = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class LifecycleSink(RecordingSink):
    """What the run lifecycle's sink does: drop non-forward updates, count persisted lines.

    `offered` keeps every update an executor or watcher sent, accepted or not.
    """

    offered: list[JobUpdate] = field(default_factory=list)

    async def job_update(self, update: JobUpdate) -> None:
        self.offered.append(update)
        current = self.updates(update.job_id)
        if current:
            last = current[-1]
            if last.status.terminal or STATUS_RANK[update.status] < STATUS_RANK[last.status]:
                return
            if update.status == last.status and update.pending_info == last.pending_info:
                return
        await super().job_update(update)

    async def job_log_count(self, job_id: str, stream: str) -> int:
        return len(self.lines(job_id, stream))


def transitions(statuses: list[JobStatus]) -> list[JobStatus]:
    """Statuses with consecutive repeats (PENDING with new pending_info) collapsed."""
    out: list[JobStatus] = []
    for s in statuses:
        if not out or out[-1] != s:
            out.append(s)
    return out


def assert_forward_only(updates: list[JobUpdate]) -> None:
    statuses = [u.status for u in updates]
    assert [STATUS_RANK[s] for s in statuses] == sorted(STATUS_RANK[s] for s in statuses), statuses
    assert sum(s.terminal for s in statuses) <= 1, statuses
    assert statuses.count(JobStatus.RUNNING) <= 1, statuses
    infos = [u.pending_info for u in updates if u.status == JobStatus.PENDING]
    assert all(a != b for a, b in itertools.pairwise(infos)), infos


def make_spec(**changes: object) -> JobSpec:
    job_id = str(changes.pop("job_id", uuid.uuid4()))
    base: dict[str, object] = dict(
        job_id=job_id, run_id=f"run-{job_id[:8]}", kind="dryrun",
        repo_url="https://git.example.com/lab/experiment.git", commit_sha=SHA,
        command="python train.py --epochs 1 --lr '0.01'",
        env={"MLFLOW_TRACKING_URI": "http://mlflow.mlpatron:5000", "MLFLOW_EXPERIMENT_ID": "7", "MLFLOW_RUN_ID": "abc123"},
        deadline_seconds=900, image="pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime", gpu_type="t4", gpu_count=1,
    )  # fmt: skip
    base.update(changes)
    return JobSpec(**base)  # type: ignore[arg-type]


@pytest.fixture
async def fake() -> AsyncIterator[FakeKubernetes]:
    server = FakeKubernetes()
    await server.start()
    yield server
    await server.stop()
    for body in server.created_bodies:  # every manifest any client produced is a valid Job
        kubernetes_validate.validate(body, "1.33.0", strict=True)


@pytest.fixture
async def api_client(fake: FakeKubernetes) -> AsyncIterator[ApiClient]:
    configuration = Configuration()
    configuration.host = fake.url
    client = ApiClient(configuration)
    yield client
    await client.close()


@pytest.fixture
def lsink() -> LifecycleSink:
    return LifecycleSink()


@pytest.fixture
async def executor(lsink: LifecycleSink, api_client: ApiClient) -> AsyncIterator[KubernetesExecutor]:
    ex = KubernetesExecutor(
        lsink, KubernetesConfig(namespace=NAMESPACE), api_client=api_client, watch=True,
        watcher_options=FAST, api_options=FAST_API,
    )  # fmt: skip
    yield ex
    await ex.close()


async def wait_status(sink: RecordingSink, job_id: str, status: JobStatus, timeout: float = 10.0) -> JobUpdate:
    await sink.wait_for(lambda: status in sink.statuses(job_id), timeout)
    return next(u for u in sink.updates(job_id) if u.status == status)


async def wait_lines(sink: RecordingSink, job_id: str, count: int, timeout: float = 10.0) -> list[str]:
    await sink.wait_for(lambda: len(sink.lines(job_id, "stdout")) >= count, timeout)
    return sink.lines(job_id, "stdout")


def watch_requests(fake: FakeKubernetes, resource: str) -> list[dict[str, str]]:
    return [
        q
        for m, p, q in fake.requests
        if m == "GET" and p.endswith(f"/{resource}") and q.get("watch", "").lower() == "true"
    ]


# ----------------------------------------------------------------------------- lifecycle


async def test_pending_unschedulable_then_running_then_succeeded_with_logs(
    executor: KubernetesExecutor, fake: FakeKubernetes, lsink: LifecycleSink
) -> None:
    spec = make_spec()
    handle = await executor.submit(spec)
    assert handle == {"name": job_name(spec), "namespace": NAMESPACE}
    name = handle["name"]
    assert name.startswith(f"mlp-dryrun-{spec.job_id.replace('-', '')[:8]}-")
    job = fake.job(name)
    assert job is not None and job["metadata"]["labels"][JOB_ID_LABEL] == spec.job_id

    await wait_status(lsink, spec.job_id, JobStatus.PENDING)
    fake.unschedulable(name, "0/4 nodes are available: 4 Insufficient nvidia.com/gpu.")
    await lsink.wait_for(
        lambda: any("Insufficient nvidia.com/gpu" in (u.pending_info or "") for u in lsink.updates(spec.job_id))
    )
    info = next(u.pending_info for u in lsink.updates(spec.job_id) if "Insufficient" in (u.pending_info or ""))
    assert info == "Unschedulable: 0/4 nodes are available: 4 Insufficient nvidia.com/gpu."

    fake.event(name, "TriggeredScaleUp", "pod triggered scale-up: [{gpu-t4-pool 0->1 (max: 4)}]")
    await lsink.wait_for(lambda: "TriggeredScaleUp" in (lsink.updates(spec.job_id)[-1].pending_info or ""))

    fake.run(name)
    running = await wait_status(lsink, spec.job_id, JobStatus.RUNNING)
    assert running.error is None
    fake.log(name, "epoch 1 loss=0.91", "epoch 2 loss=0.55", "ünïcödé ✓")
    await wait_lines(lsink, spec.job_id, 3)
    fake.log(name, "done")
    fake.finish(name, exit_code=0)

    final = await lsink.terminal(spec.job_id)
    assert final.status == JobStatus.SUCCEEDED and final.error is None
    assert lsink.lines(spec.job_id, "stdout") == ["epoch 1 loss=0.91", "epoch 2 loss=0.55", "ünïcödé ✓", "done"]
    # every line before the terminal update
    last_log = max(i for i, (kind, e) in enumerate(lsink.events) if kind == "log")
    terminal_at = next(i for i, (kind, e) in enumerate(lsink.events) if kind == "update" and e.status.terminal)
    assert last_log < terminal_at
    assert transitions(lsink.statuses(spec.job_id)) == [JobStatus.PENDING, JobStatus.RUNNING, JobStatus.SUCCEEDED]
    assert lsink.offered == lsink.updates(spec.job_id)  # the watcher itself repeated nothing
    assert_forward_only(lsink.updates(spec.job_id))


async def test_more_running_pods_than_a_default_connection_pool_are_all_followed(
    fake: FakeKubernetes, lsink: LifecycleSink, tmp_path: Path
) -> None:
    """The client `mlpatron watcher` makes holds a connection per followed log: kubernetes-asyncio's
    default pool of 100 left the logs of running pods past the 97th unread until others ended."""
    import json

    from app.execution.k8s_api import create_api_client
    from tests.k8s_fake.cluster import kubeconfig

    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(kubeconfig(fake.url, NAMESPACE)))
    client = await create_api_client(KubernetesConfig(namespace=NAMESPACE, kubeconfig=str(path), in_cluster=False))
    executor = KubernetesExecutor(lsink, KubernetesConfig(namespace=NAMESPACE), api_client=client, watch=True,
                                  watcher_options=FAST, api_options=FAST_API)  # fmt: skip
    try:
        specs = [make_spec() for _ in range(110)]
        names = [(await executor.submit(spec))["name"] for spec in specs]
        for name in names:
            fake.run(name)
        await fake.wait_until(lambda: fake.open_log_streams == len(names), timeout=30)
        for name in names:
            fake.log(name, f"hello from {name}")
        await lsink.wait_for(lambda: all(lsink.lines(s.job_id, "stdout") for s in specs), within=30)
        for name in names:
            fake.finish(name)
        for spec in specs:
            assert (await lsink.terminal(spec.job_id, within=30)).status == JobStatus.SUCCEEDED
    finally:
        await executor.close()
        await client.close()


async def test_oom_killed_is_the_root_cause(
    executor: KubernetesExecutor, fake: FakeKubernetes, lsink: LifecycleSink
) -> None:
    spec = make_spec(kind="funded", spot=True)
    name = (await executor.submit(spec))["name"]
    fake.run(name)
    fake.log(name, "allocating 80 GiB")
    await wait_status(lsink, spec.job_id, JobStatus.RUNNING)
    fake.oom_kill(name)
    final = await lsink.terminal(spec.job_id)
    assert final.status == JobStatus.FAILED
    assert final.error is not None
    assert final.error.platform is None
    assert final.error.container_terminated == {"reason": "OOMKilled", "exit_code": 137}
    assert final.error.k8s_job_condition == {
        "type": "Failed", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit",
    }  # fmt: skip
    assert lsink.lines(spec.job_id, "stdout") == ["allocating 80 GiB"]
    assert_forward_only(lsink.offered)


async def test_pod_events_are_event_lines_in_order_and_eviction_is_the_root_cause(
    executor: KubernetesExecutor, fake: FakeKubernetes, lsink: LifecycleSink
) -> None:
    """A sink without `job_events` gets the events as plain `event` lines, before the terminal update."""
    spec = make_spec()
    name = (await executor.submit(spec))["name"]
    fake.unschedulable(name, "0/2 nodes are available: 2 Insufficient nvidia.com/gpu.")
    fake.event(name, "NotTriggerScaleUp", "pod didn't trigger scale-up: 1 max node group size reached",
               series=4)  # fmt: skip
    fake.run(name)
    fake.log(name, "epoch 0")
    await wait_lines(lsink, spec.job_id, 1)
    fake.evict(name)
    final = await lsink.terminal(spec.job_id)
    assert final.status == JobStatus.FAILED and final.error is not None
    assert final.error.platform == "pod Evicted: The node was low on resource: memory."
    assert lsink.lines(spec.job_id, "event") == [
        "Warning FailedScheduling: 0/2 nodes are available: 2 Insufficient nvidia.com/gpu.",
        "Normal NotTriggerScaleUp (x4): pod didn't trigger scale-up: 1 max node group size reached",
        "Warning Evicted: The node was low on resource: memory.",
    ]
    logged = [e for kind, e in lsink.events if kind in ("log", "update") and (kind == "update" or e[1] == "event")]
    assert logged[-1] == final  # every event line came before the terminal update
    assert_forward_only(lsink.offered)


async def test_deadline_exceeded_sets_platform(
    executor: KubernetesExecutor, fake: FakeKubernetes, lsink: LifecycleSink
) -> None:
    spec = make_spec(deadline_seconds=120)
    name = (await executor.submit(spec))["name"]
    assert fake.job(name)["spec"]["activeDeadlineSeconds"] == 120  # type: ignore[index]
    fake.run(name)
    fake.log(name, "step 1")
    await wait_lines(lsink, spec.job_id, 1)
    fake.exceed_deadline(name)  # the Job controller also deletes the pod
    final = await lsink.terminal(spec.job_id)
    assert final.status == JobStatus.FAILED and final.error is not None
    assert final.error.platform is not None and final.error.platform.startswith("deadline exceeded: ")
    assert "120 s" in final.error.platform
    assert final.error.k8s_job_condition is not None and final.error.k8s_job_condition["reason"] == "DeadlineExceeded"
    assert final.error.container_terminated == {"reason": "Error", "exit_code": 137}
    assert transitions(lsink.statuses(spec.job_id)) == [JobStatus.PENDING, JobStatus.RUNNING, JobStatus.FAILED]


async def test_image_pull_backoff_is_pending_info_then_deadline(
    executor: KubernetesExecutor, fake: FakeKubernetes, lsink: LifecycleSink
) -> None:
    spec = make_spec(image="registry.example.com:5000/lab/trainer:v9")
    name = (await executor.submit(spec))["name"]
    fake.image_pull_backoff(name)
    await lsink.wait_for(lambda: (lsink.updates(spec.job_id)[-1].pending_info or "").startswith("ImagePullBackOff: "))
    assert "registry.example.com:5000/lab/trainer:v9" in (lsink.updates(spec.job_id)[-1].pending_info or "")
    fake.exceed_deadline(name)
    final = await lsink.terminal(spec.job_id)
    assert final.status == JobStatus.FAILED and final.error is not None and final.error.platform
    assert final.error.platform.startswith("deadline exceeded")
    assert "ImagePullBackOff" in final.error.platform
    assert JobStatus.RUNNING not in lsink.statuses(spec.job_id)


async def test_clone_failure_is_a_platform_error(
    executor: KubernetesExecutor, fake: FakeKubernetes, lsink: LifecycleSink
) -> None:
    spec = make_spec()
    name = (await executor.submit(spec))["name"]
    fake.fail_clone(name, "fatal: repository 'https://git.example.com/lab/experiment.git/' not found")
    final = await lsink.terminal(spec.job_id)
    assert final.status == JobStatus.FAILED and final.error is not None
    assert final.error.platform is not None and "repository checkout failed" in final.error.platform
    assert final.error.container_terminated == {"reason": "Error", "exit_code": 128}
    assert JobStatus.RUNNING not in lsink.statuses(spec.job_id)


# ----------------------------------------------------------------------------- resilience


async def test_watch_streams_cut_and_resumed_from_resource_version(
    executor: KubernetesExecutor, fake: FakeKubernetes, lsink: LifecycleSink
) -> None:
    spec = make_spec()
    name = (await executor.submit(spec))["name"]
    await wait_status(lsink, spec.job_id, JobStatus.PENDING)
    await fake.wait_until(lambda: all(fake.open_watches[r] == 1 for r in fake.open_watches))
    fake.bookmark()  # a BOOKMARK moves the resume point without an object change
    bookmark_rv = str(fake.rv)
    await fake.wait_until(lambda: fake.bookmarks_sent == 3)
    before = {r: len(watch_requests(fake, r)) for r in ("jobs", "pods", "events")}
    fake.cut_watches()
    await fake.wait_until(lambda: all(len(watch_requests(fake, r)) > before[r] for r in before))
    for resource in before:  # resumed from the bookmark, not re-listed or restarted from scratch
        assert watch_requests(fake, resource)[-1].get("resourceVersion") == bookmark_rv

    fake.run(name)
    fake.log(name, "a1", "a2")
    await wait_lines(lsink, spec.job_id, 2)
    fake.cut_logs()  # the log stream breaks mid-job: reconnect without losing or repeating lines
    fake.log(name, "a3")
    fake.cut_watches()
    fake.log(name, "a4")
    await wait_lines(lsink, spec.job_id, 4)
    fake.finish(name)
    final = await lsink.terminal(spec.job_id)
    assert final.status == JobStatus.SUCCEEDED
    assert lsink.lines(spec.job_id, "stdout") == ["a1", "a2", "a3", "a4"]
    assert executor.watcher is not None and executor.watcher.relists == {"jobs": 0, "pods": 0, "events": 0}
    assert lsink.offered == lsink.updates(spec.job_id)
    assert_forward_only(lsink.offered)


async def test_410_gone_relists_without_missed_or_repeated_transitions(
    executor: KubernetesExecutor, fake: FakeKubernetes, lsink: LifecycleSink
) -> None:
    spec = make_spec()
    name = (await executor.submit(spec))["name"]
    fake.unschedulable(name)
    await lsink.wait_for(lambda: "Unschedulable" in (lsink.updates(spec.job_id)[-1].pending_info or ""))

    # The whole run happens while the watcher sees nothing; then history is compacted (410).
    fake.pause_watches()
    fake.run(name)
    fake.log(name, "x1", "x2", "x3")
    fake.finish(name)
    fake.expire_watches()

    final = await lsink.terminal(spec.job_id)
    assert final.status == JobStatus.SUCCEEDED
    assert transitions(lsink.statuses(spec.job_id)) == [JobStatus.PENDING, JobStatus.RUNNING, JobStatus.SUCCEEDED]
    assert lsink.lines(spec.job_id, "stdout") == ["x1", "x2", "x3"]
    assert executor.watcher is not None and executor.watcher.relists["jobs"] >= 1
    assert lsink.offered == lsink.updates(spec.job_id)
    assert_forward_only(lsink.offered)


async def test_410_on_reconnect_with_too_old_resource_version(
    executor: KubernetesExecutor, fake: FakeKubernetes, lsink: LifecycleSink
) -> None:
    spec = make_spec()
    name = (await executor.submit(spec))["name"]
    await wait_status(lsink, spec.job_id, JobStatus.PENDING)
    fake.pause_watches()
    fake.run(name)
    fake.compact()  # history gone: reconnecting from the last seen version answers 410 Expired
    fake.cut_watches()
    fake.resume_watches()
    await wait_status(lsink, spec.job_id, JobStatus.RUNNING)
    assert executor.watcher is not None
    await fake.wait_until(lambda: executor.watcher is not None and executor.watcher.relists["jobs"] >= 1)
    fake.finish(name)
    assert (await lsink.terminal(spec.job_id)).status == JobStatus.SUCCEEDED
    assert_forward_only(lsink.offered)


async def test_container_restart_neither_loses_nor_repeats_lines(
    executor: KubernetesExecutor, fake: FakeKubernetes, lsink: LifecycleSink
) -> None:
    spec = make_spec()
    name = (await executor.submit(spec))["name"]
    fake.run(name)
    fake.log(name, "r0-1", "r0-2")
    await wait_lines(lsink, spec.job_id, 2)
    fake.restart_container(name, exit_code=1)
    fake.log(name, "r1-1")
    await wait_lines(lsink, spec.job_id, 3)
    fake.cut_logs()
    fake.log(name, "r1-2")
    fake.finish(name)
    assert (await lsink.terminal(spec.job_id)).status == JobStatus.SUCCEEDED
    assert lsink.lines(spec.job_id, "stdout") == ["r0-1", "r0-2", "r1-1", "r1-2"]


async def test_watcher_restart_mid_job(fake: FakeKubernetes, api_client: ApiClient, lsink: LifecycleSink) -> None:
    config = KubernetesConfig(namespace=NAMESPACE)
    first = KubernetesExecutor(lsink, config, api_client=api_client, watch=True, watcher_options=FAST)
    spec = make_spec()
    name = (await first.submit(spec))["name"]
    fake.run(name)
    fake.log(name, "l1", "l2", "l3")
    await wait_lines(lsink, spec.job_id, 3)
    await first.close()  # the watcher process goes away; the job keeps running
    fake.log(name, "l4", "l5")

    second = KubernetesWatcher(lsink, KubeApi(api_client, NAMESPACE), **FAST)  # type: ignore[arg-type]
    await second.start(sync_timeout=10)
    try:
        await wait_lines(lsink, spec.job_id, 5)
        fake.log(name, "l6")
        fake.finish(name)
        final = await lsink.terminal(spec.job_id)
    finally:
        await second.stop()
    assert final.status == JobStatus.SUCCEEDED
    assert lsink.lines(spec.job_id, "stdout") == ["l1", "l2", "l3", "l4", "l5", "l6"]
    assert transitions(lsink.statuses(spec.job_id)) == [JobStatus.PENDING, JobStatus.RUNNING, JobStatus.SUCCEEDED]
    assert_forward_only(lsink.updates(spec.job_id))
    # the new watcher re-offered RUNNING at most once; the sink's guard dropped it
    assert [u.status for u in lsink.offered].count(JobStatus.RUNNING) <= 2


async def test_new_watcher_does_not_replay_finished_jobs_logs(
    fake: FakeKubernetes, api_client: ApiClient, lsink: LifecycleSink, executor: KubernetesExecutor
) -> None:
    spec = make_spec()
    name = (await executor.submit(spec))["name"]
    fake.run(name)
    fake.log(name, "only once")
    fake.finish(name)
    await lsink.terminal(spec.job_id)
    plain = RecordingSink()  # a sink that cannot count lines: finished jobs' logs are not re-read
    watcher = KubernetesWatcher(plain, KubeApi(api_client, NAMESPACE), **FAST)  # type: ignore[arg-type]
    await watcher.start(sync_timeout=10)
    try:
        await plain.terminal(spec.job_id)
        # What a fresh watcher can tell from the cluster; the real sink drops it as already known.
        assert plain.statuses(spec.job_id) == [JobStatus.RUNNING, JobStatus.SUCCEEDED]
    finally:
        await watcher.stop()
    assert plain.lines(spec.job_id, "stdout") == []
    assert lsink.lines(spec.job_id, "stdout") == ["only once"]


# ----------------------------------------------------------------------------- executor calls


async def test_cancel_deletes_with_foreground_propagation(
    executor: KubernetesExecutor, fake: FakeKubernetes, lsink: LifecycleSink
) -> None:
    spec = make_spec()
    handle = await executor.submit(spec)
    fake.run(handle["name"])
    fake.log(handle["name"], "working")
    await wait_lines(lsink, spec.job_id, 1)
    await executor.cancel(spec.job_id, handle)
    assert fake.deletions == [("jobs", handle["name"], "Foreground")]
    final = await lsink.terminal(spec.job_id)
    assert final.status == JobStatus.CANCELLED and final.error is None  # asked for: no surprise to explain
    await fake.wait_until(lambda: fake.job(handle["name"]) is None and not fake.pods_of(handle["name"]))
    await executor.cancel(spec.job_id, handle)  # already gone: fine, and no second CANCELLED
    assert lsink.statuses(spec.job_id).count(JobStatus.CANCELLED) == 1
    assert_forward_only(lsink.offered)


async def test_job_deleted_outside_the_platform_is_cancelled(
    executor: KubernetesExecutor, fake: FakeKubernetes, lsink: LifecycleSink, api_client: ApiClient
) -> None:
    spec = make_spec()
    handle = await executor.submit(spec)
    fake.run(handle["name"])
    await wait_status(lsink, spec.job_id, JobStatus.RUNNING)
    await KubeApi(api_client, NAMESPACE).delete_job(handle["name"], "Background")  # kubectl delete job
    final = await lsink.terminal(spec.job_id)
    assert final.status == JobStatus.CANCELLED
    assert final.error is not None and "was deleted before it finished" in (final.error.platform or "")


async def test_resubmit_of_same_job_adopts_existing(
    fake: FakeKubernetes, api_client: ApiClient, lsink: LifecycleSink, executor: KubernetesExecutor
) -> None:
    spec = make_spec()
    first = await executor.submit(spec)
    other = KubernetesExecutor(lsink, KubernetesConfig(namespace=NAMESPACE), api_client=api_client, watch=False)
    try:
        second = await other.submit(spec)  # another replica, or a retry after a lost response
    finally:
        await other.close()
    assert second == first
    posts = [p for m, p, _ in fake.requests if m == "POST"]
    assert len(posts) == 2  # the second create answered 409 ...
    assert fake.created_jobs == [first["name"]]  # ... and no second Job exists
    assert len([j for j in fake.jobs() if j["metadata"]["labels"][JOB_ID_LABEL] == spec.job_id]) == 1


async def test_forbidden_create_fails_with_platform_reason(
    executor: KubernetesExecutor, fake: FakeKubernetes, lsink: LifecycleSink
) -> None:
    fake.fail(
        "POST", r"/jobs$", 403,
        message='jobs.batch is forbidden: User "system:serviceaccount:mlpatron:api" cannot create resource "jobs"',
    )  # fmt: skip
    spec = make_spec()
    with pytest.raises(KubernetesSubmitError) as caught:
        await executor.submit(spec)
    final = await lsink.terminal(spec.job_id)
    assert final.status == JobStatus.FAILED and final.error is not None
    assert final.error.platform == caught.value.platform
    assert "403 Forbidden" in final.error.platform and "cannot create resource" in final.error.platform
    assert len([1 for m, _, _ in fake.requests if m == "POST"]) == 1  # 403 is final: not retried
    assert fake.jobs() == []


async def test_transient_5xx_on_create_is_retried_safely(
    executor: KubernetesExecutor, fake: FakeKubernetes, lsink: LifecycleSink
) -> None:
    fake.fail("POST", r"/jobs$", 503)
    spec = make_spec()
    handle = await executor.submit(spec)
    assert fake.created_jobs == [handle["name"]]
    assert len([1 for m, _, _ in fake.requests if m == "POST"]) == 2
    await wait_status(lsink, spec.job_id, JobStatus.PENDING)


async def test_persistent_5xx_on_create_fails(
    executor: KubernetesExecutor, fake: FakeKubernetes, lsink: LifecycleSink
) -> None:
    fake.fail("POST", r"/jobs$", 500, times=100)
    spec = make_spec()
    with pytest.raises(KubernetesSubmitError):
        await executor.submit(spec)
    final = await lsink.terminal(spec.job_id)
    assert final.status == JobStatus.FAILED and final.error is not None
    assert "500" in (final.error.platform or "")
    assert fake.jobs() == []


async def test_invalid_image_reference_is_a_clear_error(
    executor: KubernetesExecutor, fake: FakeKubernetes, lsink: LifecycleSink
) -> None:
    spec = make_spec(image="PyTorch/PyTorch:latest !")
    with pytest.raises(ManifestError, match="invalid image reference 'PyTorch/PyTorch:latest !'"):
        await executor.submit(spec)
    final = await lsink.terminal(spec.job_id)
    assert final.error is not None and (final.error.platform or "").startswith(
        "invalid job spec: invalid image reference"
    )
    assert not [1 for m, _, _ in fake.requests if m == "POST"]


async def test_gpu_type_without_node_mapping_is_a_clear_error(
    executor: KubernetesExecutor,
    fake: FakeKubernetes,
    lsink: LifecycleSink,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dataclasses

    import app.core.settings

    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        "gpu_types:\n"
        "  - gpu_type: mystery\n"
        "    display_name: Mystery GPU\n"
        "    machine_types:\n"
        "      - {machine_type: m1, vcpu: 8, memory_gib: 32, gpu_count: 1, on_demand_cents: 100, spot_cents: 40}\n"
    )
    monkeypatch.setattr(
        app.core.settings, "_settings", dataclasses.replace(app.core.settings.get_settings(), gpu_catalog_path=str(catalog))
    )
    spec = make_spec(gpu_type="mystery", gpu_count=1)
    with pytest.raises(ManifestError, match="GPU type 'mystery' has no node_selector"):
        await executor.submit(spec)
    assert (await lsink.terminal(spec.job_id)).status == JobStatus.FAILED
    assert not [1 for m, _, _ in fake.requests if m == "POST"]


async def test_reconcile_fails_jobs_whose_job_is_gone(
    executor: KubernetesExecutor, fake: FakeKubernetes, lsink: LifecycleSink
) -> None:
    alive = make_spec()
    handle = await executor.submit(alive)
    await executor.reconcile(
        [(alive.job_id, handle), ("gone-job", {"name": "mlp-dryrun-gonejob0-abcdef", "namespace": NAMESPACE})]
    )
    final = await lsink.terminal("gone-job")
    assert final.status == JobStatus.FAILED
    assert "mlp-dryrun-gonejob0-abcdef no longer exists" in (final.error.platform or "")  # type: ignore[union-attr]
    assert not any(s.terminal for s in lsink.statuses(alive.job_id))


async def test_cancel_orphan(executor: KubernetesExecutor, fake: FakeKubernetes, api_client: ApiClient) -> None:
    spec = make_spec()
    name = (await executor.submit(spec))["name"]
    listed = await executor.list_jobs()
    assert [(j["name"], j["job_id"], j["phase"]) for j in listed] == [(name, spec.job_id, "active")]
    assert await executor.cancel_orphan(name) == spec.job_id
    assert ("jobs", name, "Foreground") in fake.deletions
    await fake.wait_until(lambda: fake.job(name) is None)
    assert await executor.cancel_orphan(name) is None  # already gone

    foreign = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "someone-elses"},
               "spec": {"template": {"spec": {"restartPolicy": "Never",
                                              "containers": [{"name": "c", "image": "busybox"}]}}}}  # fmt: skip
    await KubeApi(api_client, NAMESPACE).create_job(foreign)
    fake.created_bodies.pop()  # not ours to validate
    with pytest.raises(ValueError, match="not an mlpatron job"):
        await executor.cancel_orphan("someone-elses")
    assert fake.job("someone-elses") is not None


# ----------------------------------------------------------------------------- pure helpers


def test_log_timestamps_parse_like_go_rfc3339nano() -> None:
    assert parse_log_timestamp(b"2025-01-02T03:04:05Z") == (1735787045, 0)
    assert parse_log_timestamp(b"2025-01-02T03:04:05.1Z") == (1735787045, 100_000_000)
    assert parse_log_timestamp(b"2025-01-02T03:04:05.123456789Z") == (1735787045, 123456789)
    assert parse_log_timestamp(b"2025-01-02T03:04:05.1Z") > parse_log_timestamp(b"2025-01-02T03:04:05.09Z")  # type: ignore[operator]
    assert parse_log_timestamp(b"not-a-time") is None


def test_log_timestamps_short_path_answers_like_the_general_parser() -> None:
    """The per-second cache of the common shape answers what the general parser does, twice (a
    cached second too), for good stamps and for each way a stamp of that shape can be bad."""
    from app.execution.k8s_logs import _parse_other_timestamp

    stamps = [b"2025-01-02T03:04:05Z", b"2025-01-02T03:04:05.Z", b"2025-01-02T03:04:05.000000001Z",
              b"2025-01-02T03:04:05.1234567891Z", b"2025-01-02T03:04:05ZZ", b"2025-01-02T03:04:05.1a2Z",
              b"2025-01-02T03:04:05.+1Z", b"2025-01-02T03:04:05.1_0Z", b"2025-01-02T03:04:05.\xd9\xa1Z",
              b"2025-13-02T03:04:05.1Z", b"2025-01-02T03:04:0\xc3Z", b"2025-01-02T03:04:05.123+01:00", b"Z", b""]
    for stamp in stamps * 2:
        assert parse_log_timestamp(stamp) == _parse_other_timestamp(stamp), stamp


def test_pending_info_prefers_actionable_reasons() -> None:
    assert derive_pending_info([], []) == "waiting for the Job controller to create the pod"
    pod = {"metadata": {"name": "p"}, "spec": {}, "status": {"phase": "Pending"}}
    assert derive_pending_info([pod], []) == "waiting for the scheduler"
    pod["status"]["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                    "message": "0/4 nodes are available: 4 Insufficient nvidia.com/gpu."}]  # fmt: skip
    assert derive_pending_info([pod], []) == "Unschedulable: 0/4 nodes are available: 4 Insufficient nvidia.com/gpu."
