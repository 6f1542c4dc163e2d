"""Batched job reads for lists of jobs: queue positions, timelines and log tails, one statement each."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from strawberry.dataloader import DataLoader
from tortoise import connections

from app.api.context import Info
from app.api.rows import hydrate
from app.jobs.models import JobLogLine, JobTransition
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


async def timeline(info: Info, job_id: str) -> list[JobTransition]:
    """`Job.timeline`: every transition, oldest first."""
    return await info.context.loaders.children(JobTransition, "job_id", job_id, "seq")


_LOGS_SQL = """
SELECT page.id AS window_parent, l.* FROM unnest($1::uuid[]) WITH ORDINALITY AS page(id, n)
CROSS JOIN LATERAL (SELECT * FROM job_log_lines WHERE job_id = page.id {after}
                    ORDER BY seq {direction} LIMIT $2) l
ORDER BY page.n, l.seq
"""


async def _logs(job_ids: Sequence[str], count: int, after_seq: int | None) -> list[list[JobLogLine]]:
    """The last `count` lines of each job, or up to `count` after `after_seq`; oldest first."""
    sql = _LOGS_SQL.format(after="AND seq > $3" if after_seq is not None else "",
                           direction="ASC" if after_seq is not None else "DESC")
    params: list[Any] = [list(job_ids), count] + ([after_seq] if after_seq is not None else [])
    _, records = await connections.get("default").execute_query(sql, params)
    by_job: dict[str, list[JobLogLine]] = defaultdict(list)
    for record in records:
        line = hydrate(JobLogLine, record)
        by_job[str(line.__dict__.pop("window_parent"))].append(line)
    return [by_job[j] for j in job_ids]


async def log_tail(info: Info, job_id: str, count: int, after_seq: int | None) -> list[JobLogLine]:
    """`Job.logs`: one statement for every job of the page."""
    loader: DataLoader[str, list[JobLogLine]] = info.context.loaders.batch(
        ("Job.logs", count, after_seq), lambda ids: _logs(ids, count, after_seq))
    return await loader.load(str(job_id))
