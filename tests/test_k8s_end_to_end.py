"""The platform in Kubernetes mode, end to end, every piece its own process.

Two API replicas (`EXECUTOR=kubernetes`, no in-process watcher), two `mlpatron watcher`
processes (one leads through the PostgreSQL advisory lock, the other stands by), the simulated
cluster (`tests/k8s_fake/cluster.py`: its kubelet really clones the repository and runs the
experiment), PostgreSQL, Redis and MLflow. Runs are driven through GraphQL on one replica and
followed by websocket subscribers on the other, so every status and log line a subscriber sees
went cluster → watcher process → PostgreSQL → Redis → the other API process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from app.embedded.redis import EmbeddedRedis
from app.funding.money import largest_remainder
from tests.api_process import ApiProcess, WatcherProcess, replica_env
from tests.client import GraphQLClient, Person
from tests.experiments import RUN, create_run, make_demo_repo, make_project, pk, wait_run
from tests.helpers import eventually
from tests.k8s_fake.cluster import ClusterProcess
from tests.repos import Repo
from tests.test_money_admin import mlpatron
from tests.test_money_support import give_credit, patrons, wallet_of
from tests.ws import WsClient

SCENARIO = {
    "defaults": {"pending_seconds": 0.2, "pull_seconds": 0.2},
    "rules": [
        # The dryrun waits for a GPU node first: its pendingInfo must reach the subscribers.
        {"match": {"kind": "dryrun"}, "unschedulable_seconds": 0.6},
        {"match": {"kind": "funded", "command_contains": "--note oom"}, "oom_after_seconds": 2.0},
    ],
}
JOB_STATUS = """subscription($id: ID!) { jobStatus(jobId: $id, afterSeq: 0) {
  seq status pendingInfo error { containerTerminated { reason exitCode } } } }"""
JOB_LOGS = "subscription($id: ID!) { jobLogs(jobId: $id, afterSeq: 0, tail: 1000) { seq stream line } }"
FUND = """mutation($i: FundRunInput!) { fundRun(input: $i) { __typename
  ... on FundRunSuccess { funding { id amountCents } } ... on RunNotFundable { message } } }"""
MONEY = """query($id: ID!) { run(id: $id) { status fundedCents fundingGapCents estimatedCostCents
  project { balanceCents }
  fundedJob { id status actualCostCents costDetail startedAt finishedAt
              error { platform containerTerminated { reason exitCode } } }
  fundings { nodes { amountCents refundedCents toProjectCents surplusPolicy funder { handle } } } } }"""
STARTUP = 120.0
JOB = """query($id: ID!) { job(id: $id) { status metricHistory(key: "loss") { step value } } }"""


@dataclass
class Platform:
    cluster: ClusterProcess
    a: ApiProcess  # mutations go here
    b: ApiProcess  # subscribers listen here
    watchers: list[WatcherProcess]
    env: dict[str, str]
    work_dir: Path
    redis: EmbeddedRedis  # the platform's own, so that a test may restart it

    def leader(self) -> WatcherProcess:
        leading = [w for w in self.watchers if w.proc.poll() is None and WatcherProcess.LEADING in w.log_text()]
        assert len(leading) == 1, [w.log_tail(5) for w in self.watchers]
        return leading[0]

    def add_watcher(self) -> WatcherProcess:
        watcher = WatcherProcess(self.env, self.work_dir / f"watcher-{len(self.watchers)}.log")
        self.watchers.append(watcher)
        return watcher


@pytest.fixture(scope="module")
async def platform(settings, api: str, work_dir: Path) -> AsyncIterator[Platform]:
    """`api` (the in-process app of the other tests) only initialises this process's database access."""
    root = work_dir / "k8s-e2e"
    redis = EmbeddedRedis(root / "redis")
    cluster = ClusterProcess(root / "cluster", SCENARIO)
    env = replica_env(settings, redis.start()) | {
        "EXECUTOR": "kubernetes", "KUBECONFIG": str(cluster.kubeconfig), "K8S_ALLOW_LOCAL_REPOS": "1",
    }  # fmt: skip
    a, b = ApiProcess(env, root / "api-a.log"), ApiProcess(env, root / "api-b.log")
    platform = Platform(cluster, a, b, [], env, root, redis)
    try:
        platform.add_watcher()
        # Generous bounds: process start-up (imports) on a busy 2-core machine takes tens of seconds.
        await asyncio.gather(asyncio.to_thread(a.wait_ready, STARTUP), asyncio.to_thread(b.wait_ready, STARTUP),
                             asyncio.to_thread(platform.watchers[0].wait_for_log, WatcherProcess.LEADING, STARTUP))  # fmt: skip
        platform.add_watcher()  # the standby: started once the first one leads
        await asyncio.to_thread(platform.watchers[1].wait_for_log, "held by another process", STARTUP)
        yield platform
    finally:
        for process in [*platform.watchers, a, b]:
            process.stop()
        created = cluster.api("/_sim/created")
        cluster.stop()
        redis.stop()
    for body in created:  # every Job the platform created is a valid Kubernetes 1.33 Job
        kubernetes_validate.validate(body, "1.33.0", strict=True)


@pytest.fixture(scope="module")
def demo_repo(work_dir: Path) -> Repo:
    return make_demo_repo(work_dir)


@pytest.fixture
async def researcher(platform: Platform) -> AsyncIterator[Person]:
    person = await Person.create(platform.a.url, "k8s")
    yield person
    await person.close()


class Follower:
    """A dashboard on replica B: one websocket with jobStatus and jobLogs of one job from seq 0."""

    def __init__(self, ws: WsClient, job_id: str) -> None:
        self.ws, self.job_id = ws, job_id
        self.statuses: list[dict[str, Any]] = []
        self.lines: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()
        self._tasks = [asyncio.create_task(self._follow(JOB_STATUS, "jobStatus", self.statuses)),
                       asyncio.create_task(self._follow(JOB_LOGS, "jobLogs", self.lines))]  # fmt: skip

    @classmethod
    async def on(cls, api: ApiProcess, person: Person, job_id: str) -> Follower:
        return cls(await WsClient.connect(api.url, {"authorization": f"Bearer {person.api_key}"}), job_id)

    async def _follow(self, query: str, field: str, into: list[dict[str, Any]]) -> None:
        async for data in self.ws.subscribe(query, {"id": self.job_id}):
            into.append(data[field])
            self._arrived.set()

    async def wait_line(self, prefix: str, within: float = 60) -> None:
        async with asyncio.timeout(within):
            while not any(x["line"].startswith(prefix) for x in self.lines):
                self._arrived.clear()
                await self._arrived.wait()

    async def finished(self, within: float = 90) -> None:
        """Both streams end by themselves: status after the terminal one, logs after the last line."""
        async with asyncio.timeout(within):
            await asyncio.gather(*self._tasks)
        await self.ws.close()

    def assert_exact(self) -> None:
        """Consecutive seqs from 1 on both streams: nothing missed, nothing repeated."""
        assert [s["seq"] for s in self.statuses] == list(range(1, len(self.statuses) + 1)), self.statuses
        assert [x["seq"] for x in self.lines] == list(range(1, len(self.lines) + 1)), self.lines

    def epochs(self) -> list[str]:
        return [x["line"] for x in self.lines if x["line"].startswith("epoch")]


async def fund_concurrently(platform: Platform, run: dict[str, Any], gap: int) -> list[Any]:
    """Two patrons close the gap at the same moment, one through each replica."""
    async with patrons(platform.a.url, 2, "k8s-patron") as (p, q):
        for patron in (p, q):
            await give_credit(patron.user_id, 10_000)
        q.agent.http.base_url = platform.b.url
        results = await asyncio.gather(
            p.agent.data(FUND, {"i": {"runId": run["id"], "amountCents": gap // 2, "surplusPolicy": "REFUND"}}),
            q.agent.data(FUND, {"i": {"runId": run["id"], "amountCents": gap - gap // 2,
                                      "surplusPolicy": "TO_PROJECT"}}),
        )  # fmt: skip
    assert [r["fundRun"]["__typename"] for r in results] == ["FundRunSuccess"] * 2, results
    return [p.user_id, q.user_id]


async def assert_settled(client: GraphQLClient, run_id: str, patron_ids: list[Any], started_with: int) -> dict:
    """Cost charged once, the rest back pro rata (largest remainder) by each patron's policy; books balance."""

    def closed(body: dict) -> bool:  # the run's status flips first, the escrow is emptied just after
        r = body["run"]
        back = sum(f["refundedCents"] + f["toProjectCents"] for f in r["fundings"]["nodes"])
        return r["fundedJob"]["actualCostCents"] is not None and r["fundedJob"]["actualCostCents"] + back == r["fundedCents"]

    run = (await eventually(lambda: client.data(MONEY, {"id": run_id}), closed, within=30))["run"]
    job = run["fundedJob"]
    cost = job["actualCostCents"]
    assert cost is not None and 0 <= cost <= run["fundedCents"], job
    fundings = run["fundings"]["nodes"][::-1]  # oldest first: a tie in the remainder goes to the earliest
    surplus = largest_remainder(run["fundedCents"] - cost, [f["amountCents"] for f in fundings])
    assert [f["refundedCents"] + f["toProjectCents"] for f in fundings] == surplus
    for f in fundings:
        assert f["toProjectCents" if f["surplusPolicy"] == "REFUND" else "refundedCents"] == 0, f
    assert run["project"]["balanceCents"] == sum(f["toProjectCents"] for f in fundings)
    wallets = [sum(await wallet_of(user_id)) for user_id in patron_ids]
    assert sum(wallets) == 2 * started_with - run["fundedCents"] + sum(f["refundedCents"] for f in fundings)
    code, out = await mlpatron("ledger", "check")
    assert code == 0 and "ledger check passed" in out, out
    return run


async def test_dryrun_estimate_concurrent_funding_and_funded_job_through_the_watcher(
    platform: Platform, researcher: Person, demo_repo: Repo
) -> None:
    async with GraphQLClient(platform.a.url, researcher.api_key) as via_a:
        project = await make_project(via_a, demo_repo)
        run = await create_run(via_a, project, demo_repo, parameters={"epochs": 3, "lr": 0.5, "seconds": 0.3})
        dryrun = run["dryrunJob"]["id"]
        follower = await Follower.on(platform.b, researcher, dryrun)
        await follower.finished()
        follower.assert_exact()
        statuses = [s["status"] for s in follower.statuses]
        assert statuses[0] == "PENDING" and statuses[-2:] == ["RUNNING", "SUCCEEDED"], follower.statuses
        infos = [s["pendingInfo"] or "" for s in follower.statuses if s["status"] == "PENDING"]
        assert any(i.startswith("Kubernetes Job mlp-dryrun-") for i in infos), infos  # the submitting replica's
        assert any("Insufficient nvidia.com/gpu" in i for i in infos), infos  # from the scheduler's event
        assert follower.epochs() == ["epoch 0 loss 1.5000"]  # the dryrun override: 1 epoch
        assert {"stream": "stdout", "line": "stderr line"}.items() <= follower.lines[-1].items()  # one pod log

        created = platform.cluster.api("/_sim/created")
        assert [b["metadata"]["labels"]["mlpatron.io/job-id"] for b in created] == [pk(dryrun)]
        run = await wait_run(via_a, run["id"], {"AWAITING_FUNDING", "DRYRUN_FAILED"})
        assert run["status"] == "AWAITING_FUNDING", run
        assert run["estimateDetail"]["scale"] == 3 and run["estimatedCostCents"] == run["fundingGapCents"] >= 2

        patron_ids = await fund_concurrently(platform, run, run["fundingGapCents"])
        follower = await Follower.on(platform.b, researcher, await funded_job_of(via_a, run["id"]))
        await follower.finished()
        follower.assert_exact()
        assert [s["status"] for s in follower.statuses][-2:] == ["RUNNING", "SUCCEEDED"]
        assert follower.epochs() == ["epoch 0 loss 1.5000", "epoch 1 loss 1.0000", "epoch 2 loss 0.8333"]

        run = await wait_run(via_a, run["id"], {"COMPLETED", "FUNDED_FAILED"})
        assert run["status"] == "COMPLETED", run
        job = (await via_a.data(JOB, {"id": run["fundedJob"]["id"]}))["job"]  # metrics the pod sent to MLflow
        assert [p["step"] for p in job["metricHistory"]] == [0, 1, 2]
        assert len(platform.cluster.api("/_sim/created")) == 2  # the gap closed once: one funded Job
        await assert_settled(via_a, run["id"], patron_ids, 10_000)


async def funded_run(platform: Platform, via: GraphQLClient, repo: Repo, **parameters: Any) -> tuple[dict, list]:
    """A run whose funded job is starting: dryrun done, two patrons closed the gap."""
    project = await make_project(via, repo)
    params = {"epochs": 3, "lr": 0.5, "seconds": 0.2} | parameters
    run = await create_run(via, project, repo, parameters=params, dryrunOverrideValue=1)
    run = await wait_run(via, run["id"], {"AWAITING_FUNDING", "DRYRUN_FAILED"})
    assert run["status"] == "AWAITING_FUNDING", run
    patron_ids = await fund_concurrently(platform, run, run["fundingGapCents"])
    await funded_job_of(via, run["id"])
    return run, patron_ids


async def funded_job_of(client: GraphQLClient, run_id: str) -> str:
    """The funded job's id, once the closed gap has made it (just after the funding commits)."""
    body = await eventually(lambda: client.data(RUN, {"id": run_id}), lambda d: d["run"]["fundedJob"] is not None)
    return body["run"]["fundedJob"]["id"]


async def test_leader_watcher_killed_mid_job_standby_takes_over_without_gap_or_repeat(
    platform: Platform, researcher: Person, demo_repo: Repo
) -> None:
    async with GraphQLClient(platform.a.url, researcher.api_key) as via_a:
        project = await make_project(via_a, demo_repo)
        run = await create_run(via_a, project, demo_repo, parameters={"epochs": 60, "lr": 0.5, "seconds": 0.25},
                               dryrunOverrideValue=30)  # fmt: skip
        follower = await Follower.on(platform.b, researcher, run["dryrunJob"]["id"])
        await follower.wait_line("epoch 4")
        leader = platform.leader()
        standby = next(w for w in platform.watchers if w is not leader and w.proc.poll() is None)
        mark = len(standby.log_text())
        leader.kill()
        lines_at_kill = len(follower.lines)
        killed_at = time.monotonic()
        await asyncio.to_thread(standby.wait_for_log, WatcherProcess.LEADING, 30, mark)
        takeover = time.monotonic() - killed_at
        assert takeover < 15, takeover  # lock retry (2 s) + list + watch, on a busy machine
        platform.add_watcher()  # a new standby, as the Deployment would start
        await follower.finished()
        follower.assert_exact()
        assert len(follower.lines) > lines_at_kill  # the rest came through the standby, the only one left
        assert follower.epochs() == [f"epoch {i} loss {1 / (i + 1) + 0.5:.4f}" for i in range(30)]
        assert [s["status"] for s in follower.statuses][-2:] == ["RUNNING", "SUCCEEDED"]


async def test_redis_restart_mid_job_loses_and_repeats_nothing(
    platform: Platform, researcher: Person, demo_repo: Repo
) -> None:
    """Redis carries only wake-ups: the watcher keeps writing PostgreSQL while it is away, and the
    replica's subscribers re-read from there (DESIGN: truth first, signal second)."""
    async with GraphQLClient(platform.a.url, researcher.api_key) as via_a:
        project = await make_project(via_a, demo_repo)
        run = await create_run(via_a, project, demo_repo, parameters={"epochs": 60, "lr": 0.5, "seconds": 0.2},
                               dryrunOverrideValue=30)  # fmt: skip
        follower = await Follower.on(platform.b, researcher, run["dryrunJob"]["id"])
        await follower.wait_line("epoch 4")
        await asyncio.to_thread(platform.redis.restart)  # every pub/sub connection of every process drops
        await follower.finished()
        follower.assert_exact()
        assert follower.epochs() == [f"epoch {i} loss {1 / (i + 1) + 0.5:.4f}" for i in range(30)]
        assert [s["status"] for s in follower.statuses][-2:] == ["RUNNING", "SUCCEEDED"]
        run = await wait_run(via_a, run["id"], {"AWAITING_FUNDING", "DRYRUN_FAILED"})
        assert run["status"] == "AWAITING_FUNDING", run


async def test_oom_killed_funded_job_fails_and_settles_its_actual_cost(
    platform: Platform, researcher: Person, demo_repo: Repo
) -> None:
    async with GraphQLClient(platform.a.url, researcher.api_key) as via_a:
        run, patron_ids = await funded_run(platform, via_a, demo_repo, epochs=100, seconds=0.2, note="oom")
        run = await wait_run(via_a, run["id"], {"COMPLETED", "FUNDED_FAILED"})
        assert run["status"] == "FUNDED_FAILED", run
        settled = await assert_settled(via_a, run["id"], patron_ids, 10_000)
        job = settled["fundedJob"]
        assert job["status"] == "FAILED"
        assert job["error"]["containerTerminated"] == {"reason": "OOMKilled", "exitCode": 137}
        assert job["startedAt"] and job["costDetail"]["seconds"] > 0  # it ran until the kill: that time is paid


async def test_cancel_run_deletes_the_running_job_and_settles(
    platform: Platform, researcher: Person, demo_repo: Repo
) -> None:
    async with GraphQLClient(platform.a.url, researcher.api_key) as via_a:
        run, patron_ids = await funded_run(platform, via_a, demo_repo, epochs=200, seconds=0.2)
        job_id = await funded_job_of(via_a, run["id"])
        follower = await Follower.on(platform.b, researcher, job_id)
        await follower.wait_line("epoch 2")
        cancelled = await via_a.data(
            "mutation($i: RunIdInput!) { cancelRun(input: $i) { __typename ... on RunSuccess { run { status } } } }",
            {"i": {"id": run["id"]}},
        )
        assert cancelled["cancelRun"] == {"__typename": "RunSuccess", "run": {"status": "CANCELLED"}}, cancelled
        await follower.finished()
        follower.assert_exact()
        assert follower.statuses[-1]["status"] == "CANCELLED"
        name = next(b["metadata"]["name"] for b in platform.cluster.api("/_sim/created")
                    if b["metadata"]["labels"]["mlpatron.io/job-id"] == pk(job_id))  # fmt: skip
        assert ["jobs", name, "Foreground"] in platform.cluster.api("/_sim/deletions")
        settled = await assert_settled(via_a, run["id"], patron_ids, 10_000)
        assert settled["status"] == "CANCELLED" and settled["fundedJob"]["status"] == "CANCELLED"
        assert settled["fundedJob"]["startedAt"]  # it ran: its run time is paid, the rest goes back
