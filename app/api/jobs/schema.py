"""Jobs API: one job, the jobs list (the scheduling dashboard), and deleting orphaned Kubernetes Jobs."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.api.context import Info
from app.api.errors import InvalidStateError, ValidationFailed, typed_errors
from app.api.ids import decode_id
from app.api.jobs.types import JobType
from app.api.pagination import Connection, paginate
from app.execution.orphans import cancel_orphan_kubernetes_job
from app.jobs.models import Job
from app.jobs.status import JobStatus


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


# ---- cancelOrphanKubernetesJob (admin): delete a Kubernetes Job the platform does not track ------


@strawberry.input
class CancelOrphanKubernetesJobInput:
    name: str = strawberry.field(description="The Kubernetes Job's name (`kubectl get jobs -l mlpatron.io/job-id`).")


@strawberry.type
class OrphanKubernetesJobCancelled:
    name: str
    job_id: str | None = strawberry.field(description="The Job's job-id label (not a platform job: it has none).")
    deleted: bool = strawberry.field(description="False when the Job was already gone.")


CancelOrphanKubernetesJobPayload = Annotated[
    OrphanKubernetesJobCancelled | ValidationFailed | InvalidStateError,
    strawberry.union("CancelOrphanKubernetesJobPayload"),
]


@strawberry.type
class OrphansMutation:
    @strawberry.mutation(description="Admin. Delete a Kubernetes Job that no platform job tracks (Foreground). "
                                     "Refused (InvalidState) for a Job of a pending or running platform job — "
                                     "use cancelJob — and for Jobs without the mlpatron labels.")
    @typed_errors
    async def cancel_orphan_kubernetes_job(self, info: Info,
                                           input: CancelOrphanKubernetesJobInput) -> CancelOrphanKubernetesJobPayload:
        info.context.require_admin()
        result = await cancel_orphan_kubernetes_job(info.context.lifecycle.executor, input.name)
        return OrphanKubernetesJobCancelled(name=result.name, job_id=result.job_id, deleted=result.deleted)
