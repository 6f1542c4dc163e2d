"""cancelOrphanKubernetesJob (admin) and `mlpatron k8s cancel-orphan NAME` against the fake
Kubernetes API: orphans are deleted, Jobs of pending/running platform jobs and foreign Jobs are
refused and kept, bad names are typed errors, a second call is a no-op."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.execution.k8s_api import KubeApi
from app.execution.k8s_manifests import JOB_ID_LABEL, MANAGED_BY, MANAGED_BY_LABEL
from app.jobs.models import Job
from tests.api_process import ROOT, ApiProcess
from tests.client import GraphQLClient
from tests.experiments import create_run, make_demo_repo, make_project, pk
from tests.helpers import eventually
from tests.k8s_fake import FakeKubernetes
from tests.k8s_fake.platform import fake_cluster

CANCEL_ORPHAN = """mutation($name: String!) { cancelOrphanKubernetesJob(input: {name: $name}) { __typename
  ... on OrphanKubernetesJobCancelled { name jobId deleted }
  ... on InvalidStateError { code message }
  ... on ValidationFailed { code fields { field message } } } }"""


@pytest.fixture(scope="module")
async def cluster(settings, work_dir: Path) -> AsyncIterator[tuple[FakeKubernetes, KubeApi, dict[str, str]]]:
    """The fake API server, a client of it, and the environment of a platform using it."""
    async with fake_cluster(settings, work_dir / "orphans-kubeconfig") as cluster:
        yield cluster


@pytest.fixture(scope="module")
async def platform(cluster, work_dir: Path) -> AsyncIterator[str]:
    """An API process whose executor is Kubernetes (the fake)."""
    api = ApiProcess(cluster[2], work_dir / "orphans-api.log")
    try:
        await asyncio.to_thread(api.wait_ready)
        yield api.url
    finally:
        api.stop()


async def orphan(api: KubeApi, *, labelled: bool = True) -> str:
    """A Job in the namespace that no platform job knows."""
    name = f"mlp-dryrun-{uuid.uuid4().hex[:8]}"
    labels = {JOB_ID_LABEL: str(uuid.uuid4()), MANAGED_BY_LABEL: MANAGED_BY} if labelled else {}
    await api.create_job({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "labels": labels},
                          "spec": {"template": {"spec": {"restartPolicy": "Never",
                                                         "containers": [{"name": "main", "image": "busybox"}]}}}})
    return name


async def test_admin_cancels_orphans_and_nothing_else(cluster, platform: str, make_person, work_dir: Path) -> None:
    fake, kube, _ = cluster
    admin, researcher = await make_person("k8s-admin", admin=True), await make_person("k8s-researcher")
    async with GraphQLClient(platform, admin.api_key) as as_admin, \
            GraphQLClient(platform, researcher.api_key) as as_researcher:
        lost = await orphan(kube)
        label = fake.job(lost)["metadata"]["labels"][JOB_ID_LABEL]
        denied = await as_researcher.error(CANCEL_ORPHAN, {"name": lost})
        assert denied["extensions"]["code"] == "FORBIDDEN" and fake.job(lost) is not None

        done = (await as_admin.data(CANCEL_ORPHAN, {"name": lost}))["cancelOrphanKubernetesJob"]
        assert done == {"__typename": "OrphanKubernetesJobCancelled", "name": lost, "jobId": label, "deleted": True}
        await fake.wait_until(lambda: fake.job(lost) is None)
        again = (await as_admin.data(CANCEL_ORPHAN, {"name": lost}))["cancelOrphanKubernetesJob"]
        assert again == {"__typename": "OrphanKubernetesJobCancelled", "name": lost, "jobId": None, "deleted": False}

        # A dryrun the platform submitted (pending: nothing schedules it) is tracked: refused, kept.
        repo = make_demo_repo(work_dir)
        run = await create_run(as_researcher, await make_project(as_researcher, repo), repo)
        job = await eventually(lambda: Job.get(id=pk(run["dryrunJob"]["id"])), lambda j: bool(j.handle.get("name")))
        tracked = (await as_admin.data(CANCEL_ORPHAN, {"name": job.handle["name"]}))["cancelOrphanKubernetesJob"]
        assert tracked["__typename"] == "InvalidStateError" and "cancelJob" in tracked["message"], tracked
        assert fake.job(job.handle["name"]) is not None

        foreign = await orphan(kube, labelled=False)
        refused = (await as_admin.data(CANCEL_ORPHAN, {"name": foreign}))["cancelOrphanKubernetesJob"]
        assert refused["__typename"] == "InvalidStateError" and "not an mlpatron job" in refused["message"]
        assert fake.job(foreign) is not None

        for bad in ["Not_A_Name", "x" * 64, "-leading", ""]:
            typed = (await as_admin.data(CANCEL_ORPHAN, {"name": bad}))["cancelOrphanKubernetesJob"]
            assert typed["__typename"] == "ValidationFailed" and typed["fields"][0]["field"] == "name", (bad, typed)
        await as_researcher.data('mutation($id: ID!) { cancelRun(input: {id: $id}) { __typename } }',
                                 {"id": run["id"]})


async def test_local_platform_has_no_kubernetes_jobs(client, make_person) -> None:
    admin = await make_person("local-admin", admin=True)
    result = (await admin.agent.data(CANCEL_ORPHAN, {"name": "mlp-dryrun-x"}))["cancelOrphanKubernetesJob"]
    assert result["__typename"] == "InvalidStateError" and "local executor" in result["message"]


async def test_cli_cancel_orphan(cluster, platform: str, make_person, work_dir: Path) -> None:
    fake, kube, env = cluster

    def cli(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(Path(sys.executable).parent / "mlpatron"), "k8s", "cancel-orphan", name],
                              cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=60)

    lost = await orphan(kube)
    done = await asyncio.to_thread(cli, lost)
    assert done.returncode == 0 and f"deleted Kubernetes Job {lost}" in done.stdout, done
    await fake.wait_until(lambda: fake.job(lost) is None)

    foreign = await orphan(kube, labelled=False)
    refused = await asyncio.to_thread(cli, foreign)
    assert refused.returncode == 1 and "not an mlpatron job" in refused.stderr, refused
    assert fake.job(foreign) is not None
