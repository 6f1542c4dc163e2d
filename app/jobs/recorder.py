"""The JobSink every executor reports to: persist first (monotonic, idempotent), then wake subscribers.

Run-level consequences (estimates, settlement, notifications) are not known here: listeners
register with `on_transition`, so `jobs/` never imports `runs/`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from tortoise import connections
from tortoise.transactions import in_transaction

from app.events import bus
from app.jobs.log_writer import LogWriter
from app.jobs.models import Job, JobLogLine, JobTransition
from app.jobs.status import STATUS_RANK, JobEvent, JobStatus, JobUpdate

log = logging.getLogger("mlpatron.jobs")

TransitionCallback = Callable[[Job, JobStatus, JobStatus], Awaitable[None]]

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
        await bus.publish(f"job:{job.id}", {"kind": "status", "status": job.status})
        await bus.publish("jobs", {"job": str(job.id), "status": job.status})
        for callback in self._callbacks:
            try:
                await callback(job, old, JobStatus(job.status))
            except Exception:  # one consequence failing must not lose the transition itself
                log.exception("job %s: transition callback failed", job.id)

    async def _persist(self, update: JobUpdate) -> tuple[Job, JobStatus] | None:
        async with in_transaction():
            job = await Job.select_for_update().get_or_none(id=update.job_id)
            if job is None:
                log.warning("update for unknown job %s ignored", update.job_id)
                return None
            old = JobStatus(job.status)
            new = update.status
            # Monotonic: a late or repeated event never moves a job backwards (or ends it twice).
            if old.terminal or STATUS_RANK[new] < STATUS_RANK[old]:
                return None
            if new == old and update.pending_info == job.pending_info:
                return None
            job.status = new.value
            job.pending_info = update.pending_info if new == JobStatus.PENDING else None  # type: ignore[assignment]  # nullable
            if new == JobStatus.RUNNING and job.started_at is None:
                job.started_at = update.at
            if new.terminal:
                job.finished_at = update.at
                job.error = update.error.to_dict() if update.error else None
            job.event_seq += 1
            await job.save()
            await JobTransition.create(
                job=job, seq=job.event_seq, status=job.status, pending_info=job.pending_info,
                error=job.error, at=update.at,
            )
        return job, old

    async def job_log_count(self, job_id: str, stream: str) -> int:
        """Lines already stored: a restarted Kubernetes watcher skips exactly these."""
        return await JobLogLine.filter(job_id=job_id, stream=stream).count()

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
