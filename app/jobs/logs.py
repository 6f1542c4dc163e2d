"""Reading a job's log lines: the last lines, or the lines after a seq (what streams resume from)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from app.core import limits
from app.jobs.models import JobLogLine

MAX_LOG_TAIL = limits.MAX_LOG_TAIL

LineReader = Callable[[int, int], Awaitable[list[JobLogLine]]]


async def tail(job_id: object, count: int, after_seq: int | None = None) -> list[JobLogLine]:
    """The last `count` lines, or up to `count` lines after `after_seq`; oldest first."""
    qs = JobLogLine.filter(job_id=job_id)
    if after_seq is not None:
        return list(await qs.filter(seq__gt=after_seq).order_by("seq").limit(count))
    return list(reversed(await qs.order_by("-seq").limit(count)))


def reader(job_id: object) -> LineReader:
    """`read(after, limit)`: the lines after a seq, for `app.events.streams`."""

    async def read(after: int, limit: int) -> list[JobLogLine]:
        return list(await JobLogLine.filter(job_id=job_id, seq__gt=after).order_by("seq").limit(limit))

    return read
