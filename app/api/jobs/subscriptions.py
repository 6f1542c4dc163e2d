"""Live streams of jobs: status, logs (line by line or in batches), and the jobs board."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import datetime

import strawberry

from app.api.context import Info
from app.api.errors import BadInput, NotFound
from app.api.fanout import direct_events
from app.api.ids import decode_id
from app.api.jobs.types import JobErrorType, JobType, LogLine, check_tail
from app.api.loaders import Loaders
from app.events import streams
from app.jobs import board, logs
from app.jobs.models import Job, JobTransition
from app.jobs.status import JobStatus

BOARD_COALESCE_SECONDS = 0.2


@strawberry.type
class JobStatusEvent:
    seq: int
    status: JobStatus
    pending_info: str | None
    error: JobErrorType | None
    at: datetime


@strawberry.type
class LogBatch:
    lines: list[LogLine]
    last_seq: int = strawberry.field(description="Resume with afterSeq = lastSeq.")


@strawberry.type
class JobsBoard:
    jobs: list[JobType]
    at: datetime


async def _job(job_id: strawberry.ID) -> Job:
    job = await Job.get_or_none(id=decode_id(job_id, "Job"))
    if job is None:
        raise NotFound("Job")
    return job


async def _log_start(job_id: strawberry.ID, after_seq: int | None, tail: int) -> tuple[Job, int]:
    """The job and the seq a log stream starts after: `afterSeq`, or `tail` lines before the end."""
    check_tail(tail)
    if after_seq is not None and after_seq < 0:
        raise BadInput("afterSeq must be >= 0")
    job = await _job(job_id)
    return job, after_seq if after_seq is not None else max(job.log_seq - tail, 0)


def _terminal(job_pk: object) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        status = await Job.filter(id=job_pk).values_list("status", flat=True)
        return bool(status) and JobStatus(status[0]).terminal

    return check


def _with_queue_positions(rows: list[Job]) -> list[JobType]:
    positions = board.queue_positions(rows)
    jobs = []
    for row in rows:
        job = JobType.from_model(row)
        job.known_queue_position = positions.get(job.id)
        jobs.append(job)
    return jobs


@strawberry.type
class JobStreamsSubscription:
    @strawberry.subscription(description="The job's current state first (or every transition after afterSeq), "
                                         "then each transition; ends after the terminal one.")
    async def job_status(self, info: Info, job_id: strawberry.ID,
                         after_seq: int | None = None) -> AsyncGenerator[JobStatusEvent, None]:
        job = await _job(job_id)
        after_seq = info.context.position.start(after_seq)
        start = after_seq if after_seq is not None else max(job.event_seq - 1, 0)

        async def read(after: int, limit: int) -> list[JobTransition]:
            return list(await JobTransition.filter(job_id=job.id, seq__gt=after).order_by("seq").limit(limit))

        async for t in streams.follow(info.context.hub, [f"job:{job.id}"], read, lambda t: t.seq, start,
                                      finished=_terminal(job.id), share_key=f"job-status:{job.id}",
                                      position=info.context.position):
            yield JobStatusEvent(seq=t.seq, status=JobStatus(t.status), pending_info=t.pending_info,
                                 error=JobErrorType.from_json(str(job.id), t.error) if t.error else None, at=t.at)

    @strawberry.subscription(description="The last `tail` lines (or every line after afterSeq), then live lines; "
                                         "ends when the job has ended and every line was sent.")
    async def job_logs(self, info: Info, job_id: strawberry.ID, after_seq: int | None = None,
                       tail: int = 100) -> AsyncGenerator[LogLine, None]:
        job, start = await _log_start(job_id, info.context.position.start(after_seq), tail)
        direct = direct_events(info)  # a plain selection served by the fan-out: no strawberry per line
        # No `finished`: each read says whether the job had ended (`logs.reader`).
        async for line in streams.follow(info.context.hub, [f"job:{job.id}"], logs.reader(job.id), lambda x: x.seq,
                                         start, share_key=f"job-logs:{job.id}", position=info.context.position):
            event = LogLine.from_model(line)
            if direct is None or not await direct.send(event, line.seq):
                yield event

    @strawberry.subscription(description="jobLogs for busy dashboards: each message carries every line available "
                                         "(up to maxLines), so a subscriber that falls behind catches up in "
                                         "few messages instead of one per line.")
    async def job_log_batches(self, info: Info, job_id: strawberry.ID, after_seq: int | None = None,
                              tail: int = 100, max_lines: int = 500) -> AsyncGenerator[LogBatch, None]:
        if not (1 <= max_lines <= streams.BATCH):
            raise BadInput(f"maxLines must be between 1 and {streams.BATCH}")
        job, start = await _log_start(job_id, info.context.position.start(after_seq), tail)
        direct = direct_events(info)
        async for rows in streams.follow_batches(info.context.hub, [f"job:{job.id}"], logs.reader(job.id),
                                                 lambda x: x.seq, start, share_key=f"job-logs:{job.id}",
                                                 batch=max_lines,
                                                 position=info.context.position):
            batch = LogBatch(lines=[LogLine.from_model(r) for r in rows], last_seq=rows[-1].seq)
            if direct is None or not await direct.send(batch, batch.last_seq):
                yield batch


@strawberry.type
class JobsBoardSubscription:
    @strawberry.subscription(description="Pending and running jobs (with queue position), re-sent on every change.")
    async def jobs_board(self, info: Info,
                         status: JobStatus | None = None) -> AsyncGenerator[JobsBoard, None]:
        async with info.context.hub.listen("jobs") as signal:
            while True:
                info.context.loaders = Loaders()  # the connection outlives any cached row
                rows = await board.board([status.value] if status else None)
                yield JobsBoard(jobs=_with_queue_positions(rows), at=datetime.now().astimezone())
                await signal.wait()
                await asyncio.sleep(BOARD_COALESCE_SECONDS)  # a burst of changes → one board
