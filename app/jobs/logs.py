"""Reading a job's log lines after a seq (what streams resume from); `Job.logs` pages are in `loaders`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from tortoise import connections

from app.core import limits
from app.events.streams import Snapshot
from app.jobs.status import JobStatus

MAX_LOG_TAIL = limits.MAX_LOG_TAIL


@dataclass(frozen=True, slots=True)
class StoredLine:
    """A row of `job_log_lines` as a stream sends it."""

    seq: int
    stream: str
    line: str
    created_at: datetime


LineReader = Callable[[int, int], Awaitable[Snapshot[StoredLine]]]

# The lines and the job's status of every read waiting at the same moment, in one statement, so
# in one snapshot: a job seen ended here had every line before its end written already (its
# executor writes them first). `i` is the read's place in the batch.
_AFTER = """
SELECT r.i, j.status, l.seq, l.stream, l.line, l.created_at
FROM unnest($1::uuid[], $2::bigint[], $3::int[]) WITH ORDINALITY AS r(job_id, after, lim, i)
JOIN jobs j ON j.id = r.job_id
LEFT JOIN LATERAL (
  SELECT seq, stream, line, created_at FROM job_log_lines
  WHERE job_id = r.job_id AND seq > r.after ORDER BY seq LIMIT r.lim
) l ON true
ORDER BY r.i, l.seq
"""
MAX_READ_LINES = 20_000  # lines one statement may ask for (a read asking more goes alone)


@dataclass(slots=True)
class _Read:
    job_id: object
    after: int
    limit: int
    done: asyncio.Future[Snapshot[StoredLine]]


class _Reads:
    """Line reads of this process's streams, grouped: a log writer's wake-up reaches every follower
    of every busy job at once, and each read was a statement of its own (2,000 a second for 200
    jobs logging). The reads queued while the previous statement ran share the next one."""

    def __init__(self) -> None:
        self._queue: list[_Read] = []
        self._task: asyncio.Task[None] | None = None

    async def read(self, job_id: object, after: int, limit: int) -> Snapshot[StoredLine]:
        loop = asyncio.get_running_loop()
        request = _Read(job_id, after, limit, loop.create_future())
        self._queue.append(request)
        if self._task is None or self._task.done():
            # Lives while reads are queued: nothing to start or stop with the process.
            self._task = loop.create_task(self._run(), name="job-log-reads")
        return await request.done

    async def _run(self) -> None:
        await asyncio.sleep(0)  # the other streams woken with this one queue their reads too
        while self._queue:
            batch = self._take()
            try:
                rows = await connections.get("default").execute_query_dict(_AFTER, [
                    [r.job_id for r in batch], [r.after for r in batch], [r.limit for r in batch]])  # fmt: skip
            except Exception as exc:
                for request in batch:
                    if not request.done.done():
                        request.done.set_exception(exc)
                continue
            found: dict[int, tuple[str, list[StoredLine]]] = {}
            for row in rows:
                _, lines = found.setdefault(row["i"], (row["status"], []))
                if row["seq"] is not None:
                    lines.append(StoredLine(row["seq"], row["stream"], row["line"], row["created_at"]))
            for i, request in enumerate(batch, 1):
                if request.done.done():
                    continue  # its reader went away
                status, lines = found.get(i, (None, []))  # no row: no such job (not ended, as before)
                request.done.set_result(Snapshot(lines, status is not None and JobStatus(status).terminal))

    def _take(self) -> list[_Read]:
        taken = lines = 0
        for request in self._queue:
            if taken and lines + request.limit > MAX_READ_LINES:
                break
            taken, lines = taken + 1, lines + request.limit
        batch, self._queue = self._queue[:taken], self._queue[taken:]
        return batch


_reads = _Reads()


def reader(job_id: object) -> LineReader:
    """`read(after, limit)`: the lines after a seq, and whether the job had ended, for `app.events.streams`."""

    async def read(after: int, limit: int) -> Snapshot[StoredLine]:
        return await _reads.read(job_id, after, limit)

    return read
