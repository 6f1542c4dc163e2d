"""Jobs API: one job, and the jobs list (the scheduling dashboard)."""

from __future__ import annotations

import strawberry

from app.api.context import Info
from app.api.ids import decode_id
from app.api.pagination import Connection, paginate
from app.jobs.models import Job
from app.jobs.status import JobStatus
from app.jobs.types import JobType


@strawberry.input
class JobIdInput:
    id: strawberry.ID


@strawberry.type
class JobSuccess:
    job: JobType


@strawberry.type
class JobsQuery:
    @strawberry.field
    async def job(self, info: Info, id: strawberry.ID) -> JobType:
        return JobType.from_model(await info.context.loaders.node(Job, id, "Job"))

    @strawberry.field(description="Jobs, newest first; `status: PENDING` is the scheduling dashboard.")
    async def jobs(
        self, info: Info, status: JobStatus | None = None, run_id: strawberry.ID | None = None,
        first: int | None = None, after: str | None = None,
    ) -> Connection[JobType]:
        qs = Job.all()
        if status is not None:
            qs = qs.filter(status=status.value)
        if run_id is not None:
            qs = qs.filter(run_id=decode_id(run_id, "Run"))
        return await paginate(qs, JobType.from_model, first=first, after=after)
