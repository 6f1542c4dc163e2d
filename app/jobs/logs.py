"""Reading a job's log lines after a seq (what streams resume from); `Job.logs` pages are in `loaders`."""

from __future__ import annotations

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

# The lines and the job's status in one statement, so in one snapshot: a job seen ended here had
# every line before its end written already (its executor writes them first).
_AFTER = """
SELECT j.status, l.seq, l.stream, l.line, l.created_at
FROM jobs j LEFT JOIN LATERAL (
  SELECT seq, stream, line, created_at FROM job_log_lines WHERE job_id = j.id AND seq > $2 ORDER BY seq LIMIT $3
) l ON true
WHERE j.id = $1
"""


def reader(job_id: object) -> LineReader:
    """`read(after, limit)`: the lines after a seq, and whether the job had ended, for `app.events.streams`."""

    async def read(after: int, limit: int) -> Snapshot[StoredLine]:
        rows = await connections.get("default").execute_query_dict(_AFTER, [job_id, after, limit])
        ended = bool(rows) and JobStatus(rows[0]["status"]).terminal
        lines = [StoredLine(r["seq"], r["stream"], r["line"], r["created_at"]) for r in rows if r["seq"] is not None]
        return Snapshot(lines, ended)

    return read
