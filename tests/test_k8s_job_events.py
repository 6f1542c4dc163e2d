"""Kubernetes Events in a job's log, and the image digest on its environment (issue 16, item 5).

An API replica with `EXECUTOR=kubernetes` creates the Job on the fake API server; this test
plays scheduler and kubelet, and runs the watcher in its own process with the platform's job
recorder (as `mlpatron watcher` does): once, then a fresh one (nothing in memory) mid-job.
A subscriber follows `jobLogs` on the replica from seq 0.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.execution.k8s_api import KubeApi
from app.execution.k8s_manifests import JOB_ID_LABEL
from app.execution.k8s_watcher import KubernetesWatcher
from tests.api_process import ApiProcess
from tests.client import GraphQLClient, Person
from tests.execution.test_kubernetes import FAST
from tests.experiments import create_run, logs, make_demo_repo, make_project, pk
from tests.helpers import eventually
from tests.k8s_fake import FakeKubernetes
from tests.k8s_fake.platform import fake_cluster
from tests.ws import WsClient

UNSCHEDULABLE = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
JOB_LOGS = "subscription($id: ID!) { jobLogs(jobId: $id, afterSeq: 0) { seq stream line } }"
ENVIRONMENT = """query($id: ID!) { job(id: $id) { status executor environment {
  image imageDigest pinnedImage commitSha command parameters { key value } python packages { name } } } }"""


@pytest.fixture(scope="module")
async def cluster(settings, work_dir: Path) -> AsyncIterator[tuple[FakeKubernetes, KubeApi, ApiProcess]]:
    """The fake API server, a client of it, and an API replica whose executor is Kubernetes (it)."""
    async with fake_cluster(settings, work_dir / "events-kubeconfig") as (fake, kube, env):
        replica = ApiProcess(env, work_dir / "events-api.log")
        try:
            await asyncio.to_thread(replica.wait_ready)
            yield fake, kube, replica
        finally:
            replica.stop()


class Follower:
    """`jobLogs` from seq 0 on one websocket, until the stream ends by itself."""

    def __init__(self, ws: WsClient, job_id: str) -> None:
        self.ws = ws
        self.lines: list[dict[str, Any]] = []
        self.task = asyncio.create_task(self._follow(job_id))

    async def _follow(self, job_id: str) -> None:
        async for data in self.ws.subscribe(JOB_LOGS, {"id": job_id}):
            self.lines.append(data["jobLogs"])

    async def finished(self, within: float = 60) -> list[dict[str, Any]]:
        async with asyncio.timeout(within):
            await self.task
        await self.ws.close()
        return self.lines


def events(lines: list[dict[str, Any]]) -> list[str]:
    return [x["line"] for x in lines if x["stream"] == "event"]


async def test_pod_events_are_log_lines_once_across_a_watcher_restart_and_the_digest_is_recorded(
    cluster: tuple[FakeKubernetes, KubeApi, ApiProcess], services, work_dir: Path
) -> None:
    fake, kube, replica = cluster
    person = await Person.create(replica.url, "k8s-events")
    repo = make_demo_repo(work_dir)
    async with GraphQLClient(replica.url, person.api_key) as agent:
        run = await create_run(agent, await make_project(agent, repo), repo)
        job_id = run["dryrunJob"]["id"]
        await fake.wait_until(lambda: any(j["metadata"]["labels"][JOB_ID_LABEL] == pk(job_id) for j in fake.jobs()))
        name = next(j["metadata"]["name"] for j in fake.jobs() if j["metadata"]["labels"][JOB_ID_LABEL] == pk(job_id))
        follower = Follower(await WsClient.connect(replica.url, {"authorization": f"Bearer {person.api_key}"}),
                            job_id)  # fmt: skip

        async def log_of() -> list[dict[str, Any]]:
            return await logs(agent, job_id, tail=1000)

        first = KubernetesWatcher(services.lifecycle.recorder, kube, **FAST)
        await first.start()
        fake.unschedulable(name, UNSCHEDULABLE)  # a FailedScheduling event
        await eventually(log_of, lambda lines: len(events(lines)) == 1)
        scheduling = next(n for (_, n), e in fake.objects["events"].items() if e["reason"] == "FailedScheduling")
        fake.repeat_event(scheduling)  # the scheduler tried again: count 2 on the same Event
        fake.schedule(name)
        fake.event(name, "Pulling", 'Pulling image "ghcr.io/mlpatron/demo:1.0"')
        await eventually(log_of, lambda lines: len(events(lines)) == 3)
        await first.stop()

        # While no watcher runs: the image arrives; a fresh watcher re-lists every event.
        fake.event(name, "Pulled", 'Successfully pulled image "ghcr.io/mlpatron/demo:1.0"')
        second = KubernetesWatcher(services.lifecycle.recorder, kube, **FAST)
        await second.start()
        try:
            fake.run(name)
            fake.log(name, "epoch 0 loss 1.5000")
            await eventually(log_of, lambda lines: any(x["line"] == "epoch 0 loss 1.5000" for x in lines))
            fake.oom_kill(name)  # OOMKilling event, container OOMKilled, Job failed
            lines = await follower.finished()
        finally:
            await second.stop()

        assert events(lines) == [
            f"Warning FailedScheduling: {UNSCHEDULABLE}",
            f"Warning FailedScheduling (x2): {UNSCHEDULABLE}",
            'Normal Pulling: Pulling image "ghcr.io/mlpatron/demo:1.0"',
            'Normal Pulled: Successfully pulled image "ghcr.io/mlpatron/demo:1.0"',
            "Warning OOMKilling: Memory cgroup out of memory: Killed process 4242 (python)",
        ], lines
        assert [x["seq"] for x in lines] == list(range(1, len(lines) + 1))  # nothing missed, nothing twice
        order = [x["line"] for x in lines]
        assert order.index("epoch 0 loss 1.5000") < order.index(events(lines)[-1])  # in order with the output
        assert await log_of() == lines  # Job.logs says the same

        main = fake.pod(name)["status"]["containerStatuses"][0]
        job = (await agent.data(ENVIRONMENT, {"id": job_id}))["job"]
        assert job["status"] == "FAILED" and job["executor"] == "kubernetes"
        env = job["environment"]
        assert env["pinnedImage"] == main["imageID"] and env["pinnedImage"].startswith("ghcr.io/mlpatron/demo@sha256:")
        assert env["imageDigest"] == main["imageID"].split("@")[1] and env["image"] == "ghcr.io/mlpatron/demo:1.0"
        assert env["commitSha"] == run["commitSha"] and env["command"].startswith("python train.py --epochs 1 ")
        assert {"key": "epochs", "value": "1"} in env["parameters"]  # the dryrun's override
        assert env["python"] is None and env["packages"] == []  # the image says it: pinnedImage
    await person.close()
