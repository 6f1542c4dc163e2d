"""Log lines that arrive together (the Kubernetes watcher reads them in chunks) are stored in one
statement: consecutive seqs in order, mixed freely with single lines, and subscribers get them all."""

from __future__ import annotations

import pytest

from app.jobs.models import Job, JobLogLine
from app.projects.models import Project
from app.runs.models import Run
from tests.test_fanout import JOB_LOGS, job, recorder, take  # noqa: F401 - fixtures
from tests.ws import WsClient


async def _jobs(make_person, name: str, n: int) -> list[str]:
    """`n` dryrun jobs of finished runs nothing in the background acts on, in a project of their own."""
    import uuid

    owner = await make_person(name)
    project = await Project.create(owner_id=owner.user_id, title=name, git_url="https://example.com/r.git")
    jobs = []
    for _ in range(n):
        run = await Run.create(project=project, creator_id=owner.user_id, title=name, status="cancelled",
                               uri="https://example.com/r.git", version="main", commit_sha="0" * 40, gpu_type="l4",
                               gpu_count=1, machine_type="g2-standard-4", dryrun_override_param="epochs",
                               dryrun_override_value="1")  # fmt: skip
        jobs.append(str((await Job.create(id=uuid.uuid4(), run=run, kind="dryrun", executor="test",
                                          deadline_seconds=60)).id))  # fmt: skip
    return jobs


async def test_a_batch_takes_consecutive_seqs_among_single_lines_and_reaches_subscribers(api: str, job, recorder) -> None:  # noqa: F811
    job_id, job_gid = job
    ws = await WsClient.connect(api)
    try:
        stream = ws.subscribe(JOB_LOGS, {"id": job_gid})
        await recorder.job_log(job_id, "stdout", "one")
        await recorder.job_logs(job_id, "stdout", ["two", "three", "ünïcödé ✓"])
        await recorder.job_logs(job_id, "stdout", [])  # nothing to store: nothing happens
        await recorder.job_log(job_id, "stdout", "five")
        got = await take(stream, 5)
    finally:
        await ws.close()
    expected = [(1, "one"), (2, "two"), (3, "three"), (4, "ünïcödé ✓"), (5, "five")]
    assert [(x["seq"], x["line"]) for x in got] == expected
    stored = await JobLogLine.filter(job_id=job_id).order_by("seq").values_list("seq", "line")
    assert [tuple(row) for row in stored] == expected
    assert await recorder.job_log_count(job_id, "stdout") == 5


async def test_lines_of_many_jobs_written_at_once_share_one_statement_in_order(make_person, recorder) -> None:  # noqa: F811
    """Chunks queued while the writer is busy go to PostgreSQL together: each job's lines keep
    their order and consecutive seqs, and a bad job id fails its own write only."""
    import asyncio

    jobs = await _jobs(make_person, "batches", 5)

    writes = [recorder.job_logs(job_id, "stdout", [f"{job_id[:4]} {chunk}.{n}" for n in range(3)])
              for chunk in range(4) for job_id in jobs]  # fmt: skip
    results = await asyncio.gather(recorder.job_log("not-a-job-id", "stdout", "lost"), *writes,
                                   return_exceptions=True)  # fmt: skip
    assert isinstance(results[0], ValueError) and results[1:] == [None] * len(writes)

    for job_id in jobs:
        rows = await JobLogLine.filter(job_id=job_id).order_by("seq").values_list("seq", "line", "created_at")
        assert [(seq, line) for seq, line, _ in rows] == [
            (i + 1, f"{job_id[:4]} {chunk}.{n}") for i, (chunk, n) in enumerate((c, n) for c in range(4) for n in range(3))
        ]
    stamps = await JobLogLine.filter(job_id__in=jobs).distinct().values_list("created_at", flat=True)
    assert len(set(stamps)) == 1  # every write was queued before the writer ran: one statement


async def test_reads_of_many_streams_at_once_share_one_statement(make_person, recorder, monkeypatch) -> None:  # noqa: F811
    """Followers woken together read together: one statement answers each read exactly what it
    asked (its lines after its seq, at most its limit, and whether its job had ended)."""
    import asyncio
    import uuid
    from datetime import UTC, datetime

    from tortoise import connections

    from app.jobs import logs
    from app.jobs.status import JobStatus, JobUpdate

    jobs = await _jobs(make_person, "reads", 4)
    for k, job_id in enumerate(jobs):
        await recorder.job_logs(job_id, "stdout", [f"{k}.{n}" for n in range(5)])
    await recorder.job_update(JobUpdate(job_id=jobs[3], status=JobStatus.SUCCEEDED, at=datetime.now(UTC)))

    statements: list[str] = []
    conn = type(connections.get("default"))
    execute = conn.execute_query_dict

    async def counted(self, query, values=None):
        statements.append(query)
        return await execute(self, query, values)

    monkeypatch.setattr(conn, "execute_query_dict", counted)
    asks = [(jobs[0], 0, 500), (jobs[1], 2, 500), (jobs[2], 0, 2), (jobs[3], 5, 500), (jobs[0], 3, 1),
            (str(uuid.uuid4()), 0, 500)]  # fmt: skip
    got = await asyncio.gather(*(logs.reader(job_id)(after, limit) for job_id, after, limit in asks))
    assert len(statements) == 1
    assert [([(x.seq, x.line) for x in snapshot], snapshot.ended) for snapshot in got] == [
        ([(n + 1, f"0.{n}") for n in range(5)], False),
        ([(3, "1.2"), (4, "1.3"), (5, "1.4")], False),
        ([(1, "2.0"), (2, "2.1")], False),
        ([], True),  # ended, every line read
        ([(4, "0.3")], False),
        ([], False),  # no such job: nothing (as a read of one job answered)
    ]

    statements.clear()  # and a watcher starting to follow many pods counts their stored lines at once
    counts = await asyncio.gather(*(recorder.job_log_count(job_id, stream) for job_id in jobs
                                    for stream in ("stdout", "stderr")), return_exceptions=True)  # fmt: skip
    assert len(statements) == 1 and counts == [5, 0] * 4
    with pytest.raises(ValueError):
        await recorder.job_log_count("not-a-job-id", "stdout")
