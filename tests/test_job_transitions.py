"""The recorder's transitions (one statement each): forward only, a PENDING repeated only with new
`pending_info`, nothing after the end, the timeline and the job's row in step, listeners told once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from app.jobs.models import Job, JobTransition
from app.jobs.status import JobError, JobStatus, JobUpdate
from tests.test_fanout import job, recorder  # noqa: F401 - fixtures


async def test_transitions_move_forward_once_each_and_listeners_hear_each(job, recorder) -> None:  # noqa: F811
    job_id, _ = job
    at = datetime.now(UTC).replace(microsecond=0)
    heard: list[tuple[str, str, str | None]] = []

    async def listener(row: Job, old: JobStatus, new: JobStatus) -> None:
        heard.append((old.value, new.value, row.pending_info))

    recorder.on_transition(listener)
    try:
        updates = [
            JobUpdate(job_id, JobStatus.PENDING, at, pending_info="Unschedulable"),  # new info: recorded
            JobUpdate(job_id, JobStatus.PENDING, at, pending_info="Unschedulable"),  # same: nothing
            JobUpdate(job_id, JobStatus.RUNNING, at + timedelta(seconds=1)),
            JobUpdate(job_id, JobStatus.RUNNING, at + timedelta(seconds=2)),  # again: nothing
            JobUpdate(job_id, JobStatus.PENDING, at + timedelta(seconds=3), pending_info="late"),  # backwards
            JobUpdate(job_id, JobStatus.FAILED, at + timedelta(seconds=4), error=JobError(platform="exit 3")),
            JobUpdate(job_id, JobStatus.SUCCEEDED, at + timedelta(seconds=5)),  # after the end: nothing
        ]
        for update in updates:
            await recorder.job_update(update)
        await recorder.job_update(JobUpdate(str(uuid.uuid4()), JobStatus.RUNNING, at))  # no such job: ignored
    finally:
        recorder._callbacks.remove(listener)

    timeline = await JobTransition.filter(job_id=job_id).order_by("seq").values_list("seq", "status", "pending_info",
                                                                                     "at")  # fmt: skip
    assert [tuple(t) for t in timeline] == [
        (1, "pending", "Unschedulable", at),
        (2, "running", None, at + timedelta(seconds=1)),
        (3, "failed", None, at + timedelta(seconds=4)),
    ]
    assert heard == [("pending", "pending", "Unschedulable"), ("pending", "running", None), ("running", "failed", None)]
    row = await Job.get(id=job_id)
    assert (row.status, row.event_seq, row.pending_info) == ("failed", 3, None)
    assert (row.started_at, row.finished_at) == (at + timedelta(seconds=1), at + timedelta(seconds=4))
    assert row.error == JobError(platform="exit 3").to_dict()
