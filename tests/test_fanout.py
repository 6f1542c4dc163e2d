"""Shared fan-out: subscribers with the same selection share one execution per event, private
streams are never shared across users, slow subscribers catch up alone, idle streams read nothing."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from bench.statements import HEADER, counting_statements
from tests.ws import WsClient

JOB_LOGS = "subscription($id: ID!) { jobLogs(jobId: $id, afterSeq: 0) { seq line } }"
NOTIFICATIONS = "subscription { viewerNotifications { seq kind unreadCount notification { id } } }"


@pytest.fixture
async def job(make_person):
    """A job nothing executes: the test writes its log lines and status through the recorder."""
    from app.api.ids import encode_id
    from app.jobs.models import Job
    from app.projects.models import Project
    from app.runs.models import Run

    owner = await make_person("fan")
    project = await Project.create(owner_id=owner.user_id, title="fan-out", git_url="https://example.com/f.git")
    run = await Run.create(project=project, creator_id=owner.user_id, title="fan-out", status="cancelled",
                           uri="https://example.com/f.git", version="main", commit_sha="0" * 40, gpu_type="l4",
                           gpu_count=1, machine_type="g2-standard-4", dryrun_override_param="epochs",
                           dryrun_override_value="1")
    row = await Job.create(id=uuid.uuid4(), run=run, kind="dryrun", executor="test", deadline_seconds=60)
    yield str(row.id), encode_id("Job", row.id)
    await Job.filter(id=row.id).delete()
    await run.delete()
    await project.delete()


@pytest.fixture
def recorder(services):
    return services.lifecycle.recorder


async def finish(recorder, job_id: str) -> None:
    from app.jobs.status import JobStatus, JobUpdate

    await recorder.job_update(JobUpdate(job_id=job_id, status=JobStatus.SUCCEEDED, at=datetime.now(UTC)))


async def results_executed(api: str) -> float:
    """The shared executions' result counter, scraped like a monitoring system would."""
    async with httpx.AsyncClient(base_url=api) as http:
        text = (await http.get("/metrics")).text
    match = re.search(r'^mlpatron_subscription_results_total\{shared="true"\} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


async def take(stream, n: int) -> list[dict]:
    async with asyncio.timeout(30):
        return [next(iter((await anext(stream)).values())) for _ in range(n)]


async def test_two_subscribers_with_the_same_selection_cause_one_execution_per_event(api: str, job, recorder) -> None:
    job_id, job_gid = job
    first, second = await WsClient.connect(api), await WsClient.connect(api)
    try:
        a = first.subscribe(JOB_LOGS, {"id": job_gid})
        b = second.subscribe(JOB_LOGS, {"id": job_gid})
        before = await results_executed(api)
        for n in range(5):
            await recorder.job_log(job_id, "stdout", f"line {n}")
        got_a, got_b = await asyncio.gather(take(a, 5), take(b, 5))
        assert [x["line"] for x in got_a] == [x["line"] for x in got_b] == [f"line {n}" for n in range(5)]
        assert [x["seq"] for x in got_a] == [1, 2, 3, 4, 5]
        assert await results_executed(api) - before == 5  # not 10: one execution serves both
        await finish(recorder, job_id)
        async with asyncio.timeout(30):
            assert [x async for x in a] == [] and [x async for x in b] == []  # both completed
    finally:
        await first.close()
        await second.close()


async def test_a_late_subscriber_gets_the_whole_stream_once(api: str, job, recorder) -> None:
    """Joining a running shared execution: what it sent before is replayed, then live lines."""
    job_id, job_gid = job
    first, late = await WsClient.connect(api), await WsClient.connect(api)
    try:
        a = first.subscribe(JOB_LOGS, {"id": job_gid})
        for n in range(3):
            await recorder.job_log(job_id, "stdout", f"early {n}")
        assert [x["seq"] for x in await take(a, 3)] == [1, 2, 3]
        b = late.subscribe(JOB_LOGS, {"id": job_gid})
        assert [x["seq"] for x in await take(b, 3)] == [1, 2, 3]
        await recorder.job_log(job_id, "stdout", "live")
        assert [x["line"] for x in await take(a, 1)] == [x["line"] for x in await take(b, 1)] == ["live"]
    finally:
        await first.close()
        await late.close()


async def test_a_subscriber_that_falls_behind_continues_alone_from_postgres(api: str, job, recorder, monkeypatch) -> None:
    from app.api import fanout

    job_id, job_gid = job
    ws = await WsClient.connect(api)
    try:
        stream = ws.subscribe(JOB_LOGS, {"id": job_gid})
        for n in range(2):
            await recorder.job_log(job_id, "stdout", f"shared {n}")
        assert [x["seq"] for x in await take(stream, 2)] == [1, 2]
        monkeypatch.setattr(fanout, "OUTBOX_BYTES", 0)  # from now on every queued line is "too much"
        for n in range(3):
            await recorder.job_log(job_id, "stdout", f"alone {n}")
        got = await take(stream, 3)
        assert [(x["seq"], x["line"]) for x in got] == [(3, "alone 0"), (4, "alone 1"), (5, "alone 2")]
        await finish(recorder, job_id)
        async with asyncio.timeout(30):
            assert [x async for x in stream] == []
    finally:
        await ws.close()


async def test_a_private_stream_is_never_shared_across_users(api: str, make_person) -> None:
    from app.notifications.models import NotificationKind
    from app.notifications.services import notify

    alice, bob = await make_person("alice"), await make_person("bob")
    ws_a = await WsClient.connect(api, {"authorization": f"Bearer {alice.api_key}"})
    ws_b = await WsClient.connect(api, {"authorization": f"Bearer {bob.api_key}"})
    try:
        a, b = ws_a.subscribe(NOTIFICATIONS), ws_b.subscribe(NOTIFICATIONS)  # the very same document
        assert (await take(a, 1))[0]["kind"] == (await take(b, 1))[0]["kind"] == "snapshot"
        before = await results_executed(api)
        [for_alice] = await notify(NotificationKind.NEW_COMMENT, [alice.user_id], {"title": "for alice"})
        [for_bob] = await notify(NotificationKind.NEW_COMMENT, [bob.user_id], {"title": "for bob"})
        [got_a], [got_b] = await take(a, 1), await take(b, 1)
        assert (got_a["notification"]["id"], got_b["notification"]["id"]) == (
            _gid("Notification", for_alice.id), _gid("Notification", for_bob.id))
        assert got_a["unreadCount"] == got_b["unreadCount"] == 1
        assert await results_executed(api) - before == 2  # each user's own execution, one event each
    finally:
        await ws_a.close()
        await ws_b.close()


def _gid(type_name: str, pk: object) -> str:
    from app.api.ids import encode_id

    return encode_id(type_name, pk)


async def test_an_idle_stream_issues_no_sql(api: str, job, recorder, services, monkeypatch) -> None:
    """Counted at the asyncpg connection, for everything this subscriber's connection caused.

    Any hub that (re)connects to this Redis (another test session's too: the machine's Redis is
    shared) makes every hub wake all its streams for one re-read, the repair of wake-ups missed
    meanwhile; reads are allowed for those wake-ups only, none for the passing of time."""
    job_id, job_gid = job
    hub, wake_alls = services.hub, []
    wake_all = hub._wake_all
    monkeypatch.setattr(hub, "_wake_all", lambda: wake_alls.append(1) or wake_all())
    with counting_statements() as counter:
        token = counter.new_token()
        ws = await WsClient.connect(api, headers={HEADER: token})
        try:
            stream = ws.subscribe(JOB_LOGS, {"id": job_gid})
            await recorder.job_log(job_id, "stdout", "one line, then silence")
            await take(stream, 1)
            statements = counter.by_token[token]
            assert statements, "the counter sees this subscription's reads"
            statements.clear()
            wake_alls.clear()
            await asyncio.sleep(10)  # the idle period under test, not a stand-in for a condition
            # One re-read per hub-wide wake-up: has the job ended? then the lines after the last one.
            assert len(statements) <= 2 * len(wake_alls), (statements, len(wake_alls))
        finally:
            await ws.close()
