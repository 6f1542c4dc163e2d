"""The run and project streams: durable events that `runUpdates` and `projectActivity` follow.

Listeners wired by `app.main.start_runtime`: to job transitions (the recorder) and to run
status changes (the lifecycle). Each appends after the commit of the change it reports.
"""

from __future__ import annotations

from app.events import services as events
from app.jobs.models import Job
from app.jobs.status import JobStatus
from app.runs.models import Run


async def job_status_event(job: Job, old: JobStatus, new: JobStatus) -> None:
    """A job queued or started: the run's stream says so (its end shows as the run's status)."""
    if not new.terminal:
        await events.append(f"run:{job.run_id}", "job_status", {"job_id": str(job.id), "status": new.value})


async def run_status_events(run: Run, old_status: str) -> None:
    payload = {"run_id": str(run.id), "status": run.status, "previous": old_status}
    await events.append(f"run:{run.id}", "status", payload)
    await events.append(f"project:{run.project_id}", "run_status", payload)
