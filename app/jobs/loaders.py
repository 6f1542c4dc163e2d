"""Batched job reads for lists of jobs: queue positions and timelines, one statement each."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from tortoise import connections

from app.api.context import Info
from app.jobs.models import JobTransition
from app.jobs.status import JobStatus

# Position = pending jobs created before this one + 1. Counting those created at or after it
# walks the newest end of the partial pending index: a dashboard page (newest first) touches
# few entries, and the total is one index-only count.
_POSITIONS_SQL = """
SELECT page.id AS job_id,
       (SELECT count(*) FROM jobs WHERE status = $2)
       - (SELECT count(*) FROM jobs p WHERE p.status = $2 AND p.created_at >= j.created_at) + 1 AS position
FROM unnest($1::uuid[]) AS page(id) JOIN jobs j ON j.id = page.id
"""


async def _positions(job_ids: Sequence[str]) -> list[int]:
    rows = await connections.get("default").execute_query_dict(_POSITIONS_SQL, [list(job_ids),
                                                                                 JobStatus.PENDING.value])
    by_job = {str(r["job_id"]): int(r["position"]) for r in rows}
    return [by_job[j] for j in job_ids]


async def queue_position(info: Info, job_id: str) -> int:
    """`Job.queuePosition` of a pending job, read with every other pending job's on the page."""
    return await info.context.loaders.batch("Job.queuePosition", _positions).load(str(job_id))


async def _timelines(job_ids: Sequence[str]) -> list[list[JobTransition]]:
    by_job: dict[str, list[JobTransition]] = defaultdict(list)
    for row in await JobTransition.filter(job_id__in=list(job_ids)).order_by("job_id", "seq"):
        by_job[str(row.job_id)].append(row)
    return [by_job[j] for j in job_ids]


async def timeline(info: Info, job_id: str) -> list[JobTransition]:
    """`Job.timeline`: every transition, oldest first."""
    return await info.context.loaders.batch("Job.timeline", _timelines).load(str(job_id))
