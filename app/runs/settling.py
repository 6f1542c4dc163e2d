"""Closing a run's escrow when its funded job ends: the actual cost is the job's run time at the
machine's price (capped at the escrow); a job that never started spent nothing.

A job-transition listener (wired by `app.main.start_runtime` ahead of the lifecycle's, so the
money is settled before the run's end is announced); `app.funding.settlement` does the booking.
"""

from __future__ import annotations

from datetime import UTC, datetime

from app.catalog.catalog import resolve_machine
from app.funding import settlement
from app.jobs.models import Job
from app.jobs.status import JobStatus
from app.runs import estimates
from app.runs.models import Run


async def settle_funded_job(job: Job, old: JobStatus, new: JobStatus) -> None:
    if job.kind != "funded" or not new.terminal:
        return
    if job.started_at is None:
        # Never ran: nothing was spent, every patron gets everything back.
        await settlement.refund_all(job.run_id, "funded job ended before it started")
        return
    run = await Run.get(id=job.run_id)
    _, machine = resolve_machine(run.gpu_type, run.gpu_count, run.machine_type)
    seconds = ((job.finished_at or datetime.now(UTC)) - job.started_at).total_seconds()
    cost, detail = estimates.actual_cost(seconds=seconds, hourly_cents=machine.hourly_cents(run.spot),
                                         escrow_cents=run.funded_cents)
    detail |= {"machine_type": machine.machine_type, "spot": run.spot}
    await Job.filter(id=job.id).update(actual_cost_cents=cost, cost_detail=detail)
    await settlement.settle_run(run.id, cost, detail)
