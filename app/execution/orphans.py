"""Cancel a Kubernetes Job that has no platform job (an "orphan": e.g. left behind by a
database restore, or created by another installation sharing the namespace).

Jobs the platform still tracks (a pending or running job with that Job's id or name) are
refused: cancel those with `cancelJob`, which also settles the run.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from tortoise import connections

from app.core.errors import InvalidState, ValidationError
from app.execution.executor import Executor
from app.jobs.status import ACTIVE_JOB_STATUSES

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class OrphanCancelled:
    name: str
    job_id: str | None  # the Job's job-id label; None when it was already gone
    deleted: bool


async def _refuse_tracked(name: str, job_id: str | None) -> None:
    """InvalidState when a pending or running platform job owns this Kubernetes Job."""
    try:
        key = uuid.UUID(job_id) if job_id else None
    except ValueError:
        key = None
    rows = await connections.get("default").execute_query_dict(
        "SELECT id, status FROM jobs WHERE (id = $1 OR handle->>'name' = $2) AND status = ANY($3::text[]) LIMIT 1",
        [key, name, list(ACTIVE_JOB_STATUSES)],
    )
    if rows:
        raise InvalidState(f"Kubernetes Job {name} belongs to platform job {rows[0]['id']} ({rows[0]['status']}); "
                           "cancel it with cancelJob instead.")


async def cancel_orphan_kubernetes_job(executor: Executor, name: str) -> OrphanCancelled:
    """Delete the Job `name` unless the platform tracks it; idempotent (gone → deleted=False)."""
    from app.execution.kubernetes import KubernetesExecutor

    if not _DNS_LABEL.match(name):
        raise ValidationError({"name": "a Kubernetes Job name: lower-case letters, digits and '-', at most 63"})
    if not isinstance(executor, KubernetesExecutor):
        raise InvalidState(f"This platform runs jobs with the {executor.name} executor: there are no Kubernetes "
                           "Jobs to cancel.")
    await _refuse_tracked(name, None)
    try:
        job_id = await executor.cancel_orphan(name, guard=lambda label: _refuse_tracked(name, label))
    except ValueError as exc:  # not an mlpatron Job: not ours to delete
        raise InvalidState(str(exc)) from None
    return OrphanCancelled(name=name, job_id=job_id, deleted=job_id is not None)
