"""Log lines that arrive together (the Kubernetes watcher reads them in chunks) are stored in one
statement: consecutive seqs in order, mixed freely with single lines, and subscribers get them all."""

from __future__ import annotations

from app.jobs.models import JobLogLine
from tests.test_fanout import JOB_LOGS, job, recorder, take  # noqa: F401 - fixtures
from tests.ws import WsClient


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
