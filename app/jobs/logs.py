"""Reading a job's log lines after a seq (what streams resume from); `Job.logs` pages are in `loaders`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from tortoise import connections

from app.core import limits
from app.core.grouped import Grouped
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


async def _read_many(reads: list[tuple[object, int, int]]) -> list[Snapshot[StoredLine]]:
    rows = await connections.get("default").execute_query_dict(_AFTER, [[r[0] for r in reads], [r[1] for r in reads],
                                                                        [r[2] for r in reads]])  # fmt: skip
    found: dict[int, tuple[str, list[StoredLine]]] = {}
    for row in rows:
        _, lines = found.setdefault(row["i"], (row["status"], []))
        if row["seq"] is not None:
            lines.append(StoredLine(row["seq"], row["stream"], row["line"], row["created_at"]))
    out = []
    for i in range(1, len(reads) + 1):
        status, lines = found.get(i, (None, []))  # no row: no such job (not ended, as a read of one job said)
        out.append(Snapshot(lines, status is not None and JobStatus(status).terminal))
    return out


# Followers woken together (a log writer's wake-up reaches every follower of every busy job at
# once: 200 jobs logging made 2,000 reads a second) read together.
_reads: Grouped[tuple[object, int, int], Snapshot[StoredLine]] = Grouped(
    "job-log-reads", _read_many, weight=lambda read: read[2], max_weight=MAX_READ_LINES)


def reader(job_id: object) -> LineReader:
    """`read(after, limit)`: the lines after a seq, and whether the job had ended, for `app.events.streams`."""

    async def read(after: int, limit: int) -> Snapshot[StoredLine]:
        return await _reads.call((job_id, after, limit))

    return read
