"""Live streams of runs and jobs: status, logs, run updates, project activity, the jobs board."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from app.api.context import Info
from app.api.errors import BadInput, NotFound
from app.api.ids import decode_id
from app.api.loaders import Loaders
from app.events import streams
from app.events.models import Event
from app.execution.executor import JobStatus
from app.execution.models import Job, JobLogLine, JobTransition
from app.projects.models import Project
from app.runs.lifecycle import TERMINAL_RUN_STATUSES
from app.runs.models import Run
from app.runs.types import MAX_LOG_TAIL, JobErrorType, JobStatusEnum, JobType, LogLine, RunType

BOARD_COALESCE_SECONDS = 0.2
BOARD_SIZE = 200


def _with_queue_positions(rows: list[Job]) -> list[JobType]:
    """The board holds the oldest jobs first, so a pending job's position is its rank among the
    pending ones on it: no count query per job."""
    jobs, pending = [], 0
    for row in rows:
        job = JobType.from_model(row)
        if row.status == JobStatus.PENDING.value:
            pending += 1
            job.known_queue_position = pending
        jobs.append(job)
    return jobs


@strawberry.type
class JobStatusEvent:
    seq: int
    status: JobStatusEnum
    pending_info: str | None
    error: JobErrorType | None
    at: datetime


@strawberry.type
class LogBatch:
    lines: list[LogLine]
    last_seq: int = strawberry.field(description="Resume with afterSeq = lastSeq.")


@strawberry.type
class RunUpdate:
    seq: int = strawberry.field(description="Position in the run's event stream; resume with afterSeq.")
    kind: str = strawberry.field(description="snapshot, status, funding, job_status")
    payload: JSON
    run: RunType


@strawberry.type
class ProjectActivity:
    seq: int
    kind: str = strawberry.field(description="run_created, run_status, discussion, comment, …")
    payload: JSON
    at: datetime


@strawberry.type
class JobsBoard:
    jobs: list[JobType]
    at: datetime


def _fresh(info: Info) -> None:
    # A websocket context lives as long as the connection: cached rows would go stale.
    info.context.loaders = Loaders()


async def _job(job_id: strawberry.ID) -> Job:
    job = await Job.get_or_none(id=decode_id(job_id, "Job"))
    if job is None:
        raise NotFound("Job")
    return job


async def _log_start(job_id: strawberry.ID, after_seq: int | None, tail: int) -> tuple[Job, int]:
    """The job and the seq a log stream starts after: `afterSeq`, or `tail` lines before the end."""
    if not (0 <= tail <= MAX_LOG_TAIL):
        raise BadInput(f"tail must be between 0 and {MAX_LOG_TAIL}")
    if after_seq is not None and after_seq < 0:
        raise BadInput("afterSeq must be >= 0")
    job = await _job(job_id)
    return job, after_seq if after_seq is not None else max(job.log_seq - tail, 0)


def _log_reader(job_pk: object):
    async def read(after: int, limit: int) -> list[JobLogLine]:
        return list(await JobLogLine.filter(job_id=job_pk, seq__gt=after).order_by("seq").limit(limit))

    return read


def _terminal(job_pk: object):
    async def check() -> bool:
        status = await Job.filter(id=job_pk).values_list("status", flat=True)
        return bool(status) and JobStatus(status[0]).terminal

    return check


@strawberry.type
class RunsSubscription:
    @strawberry.subscription(description="The job's current state first (or every transition after afterSeq), "
                                         "then each transition; ends after the terminal one.")
    async def job_status(self, info: Info, job_id: strawberry.ID,
                         after_seq: int | None = None) -> AsyncGenerator[JobStatusEvent, None]:
        job = await _job(job_id)
        start = after_seq if after_seq is not None else max(job.event_seq - 1, 0)

        async def read(after: int, limit: int) -> list[JobTransition]:
            return list(await JobTransition.filter(job_id=job.id, seq__gt=after).order_by("seq").limit(limit))

        async for t in streams.follow([f"job:{job.id}"], read, lambda t: t.seq, start,
                                      finished=_terminal(job.id), share_key=f"job-status:{job.id}"):
            yield JobStatusEvent(seq=t.seq, status=JobStatusEnum(t.status), pending_info=t.pending_info,
                                 error=JobErrorType.from_json(str(job.id), t.error) if t.error else None, at=t.at)

    @strawberry.subscription(description="The last `tail` lines (or every line after afterSeq), then live lines; "
                                         "ends when the job has ended and every line was sent.")
    async def job_logs(self, info: Info, job_id: strawberry.ID, after_seq: int | None = None,
                       tail: int = 100) -> AsyncGenerator[LogLine, None]:
        job, start = await _log_start(job_id, after_seq, tail)
        async for line in streams.follow([f"job:{job.id}"], _log_reader(job.id), lambda x: x.seq, start,
                                         finished=_terminal(job.id), share_key=f"job-logs:{job.id}"):
            yield LogLine.from_model(line)

    @strawberry.subscription(description="jobLogs for busy dashboards: each message carries every line available "
                                         "(up to maxLines), so a subscriber that falls behind catches up in "
                                         "few messages instead of one per line.")
    async def job_log_batches(self, info: Info, job_id: strawberry.ID, after_seq: int | None = None,
                              tail: int = 100, max_lines: int = 500) -> AsyncGenerator[LogBatch, None]:
        if not (1 <= max_lines <= streams.BATCH):
            raise BadInput(f"maxLines must be between 1 and {streams.BATCH}")
        job, start = await _log_start(job_id, after_seq, tail)
        async for rows in streams.follow_batches([f"job:{job.id}"], _log_reader(job.id), lambda x: x.seq, start,
                                                 finished=_terminal(job.id), share_key=f"job-logs:{job.id}",
                                                 batch=max_lines):
            yield LogBatch(lines=[LogLine.from_model(r) for r in rows], last_seq=rows[-1].seq)

    @strawberry.subscription(description="A snapshot, then status, funding and job changes of the run.")
    async def run_updates(self, info: Info, run_id: strawberry.ID,
                          after_seq: int | None = None) -> AsyncGenerator[RunUpdate, None]:
        run_pk = decode_id(run_id, "Run")
        run = await Run.get_or_none(id=run_pk)
        if run is None:
            raise NotFound("Run")
        stream = f"run:{run.id}"
        start = after_seq if after_seq is not None else await streams.last_event_seq(stream)
        if after_seq is None:
            yield RunUpdate(seq=start, kind="snapshot", payload={}, run=RunType.from_model(run))

        async def finished() -> bool:
            # The stream's own last status event, not the run row: the row commits before its
            # event is appended, and ending on the row would skip that final event.
            last = await Event.filter(stream=stream, kind="status").order_by("-seq").first()
            return last is not None and last.payload.get("status") in TERMINAL_RUN_STATUSES

        async for event in streams.follow([stream], lambda a, n: streams.events_after(stream, a, n),
                                          lambda e: e.seq, start, finished=finished, on_item=lambda: _fresh(info)):
            yield RunUpdate(seq=event.seq, kind=event.kind, payload=event.payload,
                            run=RunType.from_model(await Run.get(id=run_pk)))

    @strawberry.subscription(description="Runs created or changing state, discussions and comments.")
    async def project_activity(self, info: Info, project_id: strawberry.ID,
                               after_seq: int | None = None) -> AsyncGenerator[ProjectActivity, None]:
        project = await Project.get_or_none(id=decode_id(project_id, "Project"))
        if project is None:
            raise NotFound("Project")
        stream = f"project:{project.id}"
        start = after_seq if after_seq is not None else await streams.last_event_seq(stream)
        async for event in streams.follow([stream], lambda a, n: streams.events_after(stream, a, n),
                                          lambda e: e.seq, start):
            yield ProjectActivity(seq=event.seq, kind=event.kind, payload=event.payload, at=event.created_at)

    @strawberry.subscription(description="Pending and running jobs (with queue position), re-sent on every change.")
    async def jobs_board(self, info: Info,
                         status: JobStatusEnum | None = None) -> AsyncGenerator[JobsBoard, None]:
        from app.runtime import get_runtime

        wanted = [status.value] if status else [JobStatus.PENDING.value, JobStatus.RUNNING.value]
        async with get_runtime().hub.listen("jobs") as signal:
            while True:
                _fresh(info)
                rows = await Job.filter(status__in=wanted).order_by("created_at").limit(BOARD_SIZE)
                yield JobsBoard(jobs=_with_queue_positions(rows), at=datetime.now().astimezone())
                await signal.wait(at_most=streams.IDLE_REREAD_SECONDS)
                await asyncio.sleep(BOARD_COALESCE_SECONDS)  # a burst of changes → one board
