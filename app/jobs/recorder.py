"""The JobSink every executor reports to: persist first (monotonic, idempotent), then wake subscribers.

Run-level consequences (estimates, settlement, notifications) are not known here: listeners
register with `on_transition`, so `jobs/` never imports `runs/`.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from tortoise import connections

from app.core.grouped import Grouped
from app.events import bus
from app.jobs.log_writer import LogWriter
from app.jobs.models import Job
from app.jobs.status import STATUS_RANK, JobEvent, JobStatus, JobUpdate

log = logging.getLogger("mlpatron.jobs")

TransitionCallback = Callable[[Job, JobStatus, JobStatus], Awaitable[None]]

# Lines stored per (job, stream), for every follower asking at the same moment (a watcher that
# starts following 200 pods asks 200 times at once).
_LINE_COUNTS = """
SELECT (SELECT count(*) FROM job_log_lines l WHERE l.job_id = c.job_id AND l.stream = c.stream) AS n
FROM unnest($1::uuid[], $2::text[]) WITH ORDINALITY AS c(job_id, stream, i)
ORDER BY c.i
"""


async def _count_lines(asks: list[tuple[uuid.UUID, str]]) -> list[int]:
    rows = await connections.get("default").execute_query_dict(_LINE_COUNTS, [[a[0] for a in asks],
                                                                             [a[1] for a in asks]])  # fmt: skip
    return [int(row["n"]) for row in rows]


_line_counts: Grouped[tuple[uuid.UUID, str], int] = Grouped("job-log-counts", _count_lines)

# Kubernetes Events into the log of an unfinished job, each (uid, occurrences) once: the marks
# table says what is already there, so a restarted watcher's re-list writes nothing twice, and a
# job's log gets nothing after its terminal update (its `jobLogs` streams have ended).
_EVENTS_INSERT = """
WITH batch AS (
  SELECT * FROM unnest($2::text[], $3::int[], $4::text[]) WITH ORDINALITY AS t(uid, occurrences, line, n)
), job AS (
  SELECT id FROM jobs WHERE id = $1 AND status IN ('pending', 'running') FOR UPDATE
), marked AS (
  INSERT INTO job_event_marks AS m (job_id, event_uid, occurrences)
  SELECT job.id, b.uid, b.occurrences FROM job, batch b
  ON CONFLICT (job_id, event_uid) DO UPDATE SET occurrences = EXCLUDED.occurrences
    WHERE m.occurrences < EXCLUDED.occurrences
  RETURNING event_uid
), fresh AS (
  SELECT b.line, row_number() OVER (ORDER BY b.n) AS k FROM batch b WHERE b.uid IN (SELECT event_uid FROM marked)
), s AS (
  UPDATE jobs SET log_seq = log_seq + (SELECT count(*) FROM fresh)
  WHERE id = $1 AND EXISTS (SELECT 1 FROM fresh) RETURNING log_seq
)
INSERT INTO job_log_lines (job_id, seq, stream, line, created_at)
SELECT $1, s.log_seq - (SELECT count(*) FROM fresh) + f.k, 'event', f.line, $5 FROM s, fresh f
RETURNING seq
"""
# A job's transition in one statement (it was five round trips, each queued behind those of a
# thousand other jobs): monotonic — a late or repeated event never moves a job backwards or ends
# it twice — and a PENDING is repeated only with new `pending_info`. One row: the old status, and
# the job as updated (all NULL when nothing changed); no row: no such job.
_TRANSITION = f"""
WITH old AS (
  SELECT id, status, pending_info FROM jobs WHERE id = $1 FOR UPDATE
), new AS (
  UPDATE jobs j SET
    status = $2,
    pending_info = CASE WHEN $2 = '{JobStatus.PENDING.value}' THEN $3 END,
    started_at = CASE WHEN $2 = '{JobStatus.RUNNING.value}' AND j.started_at IS NULL THEN $4 ELSE j.started_at END,
    finished_at = CASE WHEN $5 THEN $4 ELSE j.finished_at END,
    error = CASE WHEN $5 THEN $6::jsonb ELSE j.error END,
    event_seq = j.event_seq + 1
  FROM old
  WHERE j.id = old.id
    AND old.status IN ('{JobStatus.PENDING.value}', '{JobStatus.RUNNING.value}')
    AND $7 >= CASE old.status WHEN '{JobStatus.PENDING.value}' THEN {STATUS_RANK[JobStatus.PENDING]}
                              ELSE {STATUS_RANK[JobStatus.RUNNING]} END
    AND NOT (old.status = $2 AND old.pending_info IS NOT DISTINCT FROM $3)
  RETURNING j.*
), transition AS (
  INSERT INTO job_transitions (job_id, seq, status, pending_info, error, at)
  SELECT id, event_seq, status, pending_info, error, $4 FROM new
)
SELECT old.status AS old_status, new.* FROM old LEFT JOIN new ON true
"""
# Merged key by key; a report that says nothing new (a restarted watcher's) writes nothing.
_ENVIRONMENT_MERGE = """
INSERT INTO job_environments AS e (job_id, facts) SELECT id, $2::jsonb FROM jobs WHERE id = $1
ON CONFLICT (job_id) DO UPDATE SET facts = e.facts || EXCLUDED.facts WHERE NOT e.facts @> EXCLUDED.facts
"""


class JobRecorder:
    def __init__(self) -> None:
        self._callbacks: list[TransitionCallback] = []
        self._logs = LogWriter()

    def on_transition(self, callback: TransitionCallback) -> None:
        self._callbacks.append(callback)

    async def job_update(self, update: JobUpdate) -> None:
        changed = await self._persist(update)
        if changed is None:
            return
        job, old = changed
        await bus.publish_many([(f"job:{job.id}", {"kind": "status", "status": job.status}),
                                ("jobs", {"job": str(job.id), "status": job.status})])  # fmt: skip
        for callback in self._callbacks:
            try:
                await callback(job, old, JobStatus(job.status))
            except Exception:  # one consequence failing must not lose the transition itself
                log.exception("job %s: transition callback failed", job.id)

    async def _persist(self, update: JobUpdate) -> tuple[Job, JobStatus] | None:
        new = update.status
        error = json.dumps(update.error.to_dict()) if new.terminal and update.error else None
        conn = connections.get("default")
        rows = await conn.execute_query_dict(_TRANSITION, [
            update.job_id, new.value, update.pending_info, update.at, new.terminal, error, STATUS_RANK[new],
        ])  # fmt: skip
        if not rows:
            log.warning("update for unknown job %s ignored", update.job_id)
            return None
        row = rows[0]
        if row["id"] is None:
            return None  # not forward, or nothing new
        old = JobStatus(row.pop("old_status"))
        return Job._init_from_db(**row), old

    async def job_log_count(self, job_id: str, stream: str) -> int:
        """Lines already stored: a restarted Kubernetes watcher skips exactly these."""
        return await _line_counts.call((uuid.UUID(str(job_id)), stream))  # a bad id fails its caller only

    async def job_log(self, job_id: str, stream: str, line: str) -> None:
        await self._logs.write(job_id, stream, [line])

    async def job_logs(self, job_id: str, stream: str, lines: list[str]) -> None:
        """Lines that arrived together, stored in order (with other jobs' lines, in one statement
        when they come at once: `LogWriter`), then one wake-up per job."""
        await self._logs.write(job_id, stream, lines)

    async def job_events(self, job_id: str, events: list[JobEvent]) -> None:
        """Kubernetes Events as `event` log lines, in order; what the log already has is skipped."""
        latest = {e.uid: e for e in sorted(events, key=lambda e: e.occurrences)}  # one row per uid
        batch = [e for e in events if latest.get(e.uid) is e]
        if not batch:
            return
        conn = connections.get("default")
        rows = await conn.execute_query_dict(_EVENTS_INSERT, [
            job_id, [e.uid for e in batch], [e.occurrences for e in batch], [e.line for e in batch],
            datetime.now(UTC),
        ])  # fmt: skip
        if rows:
            await bus.publish(f"job:{job_id}", {"kind": "log", "seq": max(r["seq"] for r in rows)})

    async def job_environment(self, job_id: str, facts: dict[str, object]) -> None:
        """What the job ran, as its executor saw it (image digest, Python packages): Job.environment."""
        conn = connections.get("default")
        await conn.execute_query(_ENVIRONMENT_MERGE, [job_id, json.dumps(facts)])
