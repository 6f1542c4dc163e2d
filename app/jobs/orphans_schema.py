"""`cancelOrphanKubernetesJob` (admin): delete a Kubernetes Job the platform does not track."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.api.context import Info
from app.api.errors import InvalidStateError, ValidationFailed, typed_errors
from app.execution.orphans import cancel_orphan_kubernetes_job


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
