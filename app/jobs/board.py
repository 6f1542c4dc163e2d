"""The jobs board: active jobs, oldest first, and where each pending job stands in the queue."""

from __future__ import annotations

from app.jobs.models import Job
from app.jobs.status import ACTIVE_JOB_STATUSES, JobStatus

BOARD_SIZE = 200


async def board(statuses: list[str] | None = None) -> list[Job]:
    return list(await Job.filter(status__in=statuses or list(ACTIVE_JOB_STATUSES))
                .order_by("created_at").limit(BOARD_SIZE))


def queue_positions(rows: list[Job]) -> dict[str, int]:
    """The board holds the oldest jobs first, so a pending job's position is its rank among the
    pending ones on it: no count query per job."""
    positions: dict[str, int] = {}
    for row in rows:
        if row.status == JobStatus.PENDING.value:
            positions[str(row.id)] = len(positions) + 1
    return positions
