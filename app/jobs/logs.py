"""Reading a job's log lines after a seq (what streams resume from); `Job.logs` pages are in `loaders`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from app.core import limits
from app.jobs.models import JobLogLine

MAX_LOG_TAIL = limits.MAX_LOG_TAIL

LineReader = Callable[[int, int], Awaitable[list[JobLogLine]]]


def reader(job_id: object) -> LineReader:
    """`read(after, limit)`: the lines after a seq, for `app.events.streams`."""

    async def read(after: int, limit: int) -> list[JobLogLine]:
        return list(await JobLogLine.filter(job_id=job_id, seq__gt=after).order_by("seq").limit(limit))

    return read
