"""A rolling restart loses nothing: one of two API replicas gets SIGTERM while 50 subscribers
follow a running job and patrons are funding a run through it.

The stopping replica finishes its in-flight HTTP requests and closes every websocket with 1012
("service restart"); clients reconnect to the other replica with `afterSeq` = the last `seq`
they saw and receive every log line exactly once. A `fundRun` cut off by the restart is retried
on the other replica with the same idempotency key and counts once.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx

from app.funding.models import Funding
from app.runs.models import Run
from tests.api_process import ApiProcess, replica_env
from tests.client import GraphQLClient
from tests.experiments import create_run, logs, make_demo_repo, make_project
from tests.test_money_support import FUND_RUN, assert_books_balance, gid, give_cash, make_run
from tests.test_money_support import make_project as money_project
from tests.ws import WsClient

JOB_LOGS = "subscription($id: ID!, $after: Int, $tail: Int!) { jobLogs(jobId: $id, afterSeq: $after, tail: $tail) { seq stream line } }"
SERVICE_RESTART = 1012
SUBSCRIBERS = 50
EPOCHS = 150  # 15 s of log lines: the restart lands mid-job


class Follower:
    """A dashboard following a job's log: on a lost connection it reconnects to the next replica
    and resumes after the last `seq` it saw (what the SPA's client does)."""

    def __init__(self, urls: list[str], token: str, job_id: str) -> None:
        self.urls, self.token, self.job_id = urls, token, job_id
        self.lines: list[dict] = []
        self.close_codes: list[int] = []
        self.connected = asyncio.Event()
        self.mid_job = asyncio.Event()  # a few lines in

    async def run(self) -> None:
        for url in self.urls:
            ws = await WsClient.connect(url, {"authorization": f"Bearer {self.token}"})
            after = self.lines[-1]["seq"] if self.lines else 0
            self.connected.set()
            async for data in ws.subscribe(JOB_LOGS, {"id": self.job_id, "after": after, "tail": 1000}):
                self.lines.append(data["jobLogs"])
                if len(self.lines) >= 3:
                    self.mid_job.set()
            if ws.conn.close_code is None:  # `complete`: the job ended and every line was sent
                await ws.close()
                return
            self.close_codes.append(ws.conn.close_code)
            await ws.close()
        raise AssertionError("every replica went away")


async def fund_with_retry(urls: list[str], token: str, run_id: str, key: str) -> dict:
    """fundRun on the first replica; if the restart cuts the request off, the same key on the next."""
    for url in urls:
        async with GraphQLClient(url, token) as client:
            try:
                body = await client.data(FUND_RUN, {"i": {"runId": run_id, "amountCents": 1, "idempotencyKey": key}})
                return body["fundRun"]
            except httpx.TransportError:
                continue
    raise AssertionError("no replica answered")


async def test_sigterm_of_a_replica_loses_no_log_line_and_no_cent(api: str, settings, work_dir: Path, make_person) -> None:
    repo = make_demo_repo(work_dir)
    researcher, patron = await make_person("rolling"), await make_person("patron")
    a = ApiProcess(replica_env(settings), work_dir / "rolling-a.log")
    b = ApiProcess(replica_env(settings), work_dir / "rolling-b.log")
    try:
        await asyncio.gather(asyncio.to_thread(a.wait_ready, 90), asyncio.to_thread(b.wait_ready, 90))
        # The job runs in this test's process (the watcher); the replicas only serve clients.
        project = await make_project(researcher.agent, repo)
        run = await create_run(researcher.agent, project, repo, parameters={"epochs": 300, "seconds": 0.1},
                               dryrunOverrideValue=EPOCHS)  # fmt: skip
        job_id = run["dryrunJob"]["id"]
        # Half the dashboards start on A (and must move to B), half on B.
        followers = [Follower([a.url, b.url] if i % 2 == 0 else [b.url], researcher.api_key, job_id)
                     for i in range(SUBSCRIBERS)]  # fmt: skip
        tasks = [asyncio.create_task(f.run()) for f in followers]
        async with asyncio.timeout(60):
            await asyncio.gather(*(f.connected.wait() for f in followers))
            await asyncio.gather(*(f.mid_job.wait() for f in followers))

        await give_cash(patron.user_id, 1000)
        target = await make_run(await money_project(researcher.user_id), 10_000)
        keys = [f"rolling-{uuid.uuid4().hex}" for _ in range(20)]
        funding = [asyncio.create_task(fund_with_retry([a.url, b.url], patron.api_key, gid("Run", target.id), k))
                   for k in keys]  # fmt: skip
        assert not any(t.done() for t in tasks), "the job ended before the restart: nothing was tested"
        await asyncio.to_thread(a.stop)  # SIGTERM, then wait for it to exit
        answers = await asyncio.gather(*funding)
        async with asyncio.timeout(120):
            await asyncio.gather(*tasks)
    finally:
        a.stop()
        b.stop()

    everything = await logs(researcher.agent, job_id, tail=1000)
    assert sum(line["line"].startswith("epoch") for line in everything) == EPOCHS
    for follower in followers:
        assert follower.lines == everything  # every line, in order, none twice
    moved = followers[0::2]
    assert [f.close_codes for f in moved] == [[SERVICE_RESTART]] * len(moved)
    assert all(f.close_codes == [] for f in followers[1::2])

    assert all(answer["__typename"] == "FundRunSuccess" for answer in answers), answers
    assert await Funding.filter(run_id=target.id).count() == len(keys)
    assert (await Run.get(id=target.id)).funded_cents == len(keys)
    await assert_books_balance()
