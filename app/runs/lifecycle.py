"""The run lifecycle: jobs of a run and the run's state machine.

    dryrun ──ok──▶ awaiting_funding ──gap 0──▶ funded ──ok──▶ completed
       └─failed─▶ dryrun_failed   cancel ▶ cancelled ◀┘ └─failed─▶ funded_failed

Jobs are created in the database first, then launched (MLflow run, executor submit). A crash
between the two leaves a job with no handle, which `reconcile` launches; a funded run with no
funded job is started by `reconcile` too, so the funded job starts exactly once.

The lifecycle listens to job transitions (`job_transition`, registered with the recorder) and
publishes run status changes to its own listeners (`on_run_status`): the run and project streams,
notifications. Settlement listens to job transitions itself (`app.runs.settling`), so the
lifecycle and the money code never call each other; `app.main.start_runtime` wires them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.transactions import in_transaction

from app.catalog.catalog import resolve_machine
from app.core.settings import get_settings
from app.core.tasks import cancel_and_wait
from app.events import bus
from app.events.hub import Hub
from app.execution import mlproject
from app.execution.executor import Executor, JobSpec
from app.funding.models import Funding
from app.jobs.models import Job
from app.jobs.recorder import JobRecorder
from app.jobs.status import JobError, JobStatus, JobUpdate
from app.projects.models import Project
from app.runs import estimates
from app.runs.models import Run, RunStatus
from app.runs.settling import settle_funded_job
from app.tracking.mlflow import MlflowTracker, TrackingError

log = logging.getLogger("mlpatron.lifecycle")

RECONCILE_SECONDS = 30.0
CANCEL_TOPIC = "control:cancel-jobs"
# This process, so that a restarted platform fails only the local jobs whose owner is gone.
INSTANCE = {"host": socket.gethostname(), "pid": os.getpid()}

# After the commit of a run's status change: (the run as changed, its previous status; "" for a new run).
RunStatusListener = Callable[[Run, str], Awaitable[object]]
# After the commit of a funding: (the funding, its run as funded).
FundingListener = Callable[[Funding, Run], Awaitable[object]]


def _now() -> datetime:
    return datetime.now(UTC)


class Lifecycle:
    def __init__(self, executor: Executor, recorder: JobRecorder, tracker: MlflowTracker | None, hub: Hub) -> None:
        self.executor = executor
        self.recorder = recorder
        self.tracker = tracker
        self.hub = hub
        self._run_listeners: list[RunStatusListener] = []
        self._funding_listeners: list[FundingListener] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    def on_run_status(self, listener: RunStatusListener) -> None:
        self._run_listeners.append(listener)

    def on_funding(self, listener: FundingListener) -> None:
        self._funding_listeners.append(listener)

    # ---- jobs -------------------------------------------------------------------------------

    async def create_job(self, run: Run, kind: str) -> Job:
        """The job row (inside the caller's transaction); `launch` submits it after commit."""
        settings = get_settings()
        _, machine = resolve_machine(run.gpu_type, run.gpu_count, run.machine_type)
        params = dict(run.parameters)
        if kind == "dryrun":
            params[run.dryrun_override_param] = run.dryrun_override_value
            deadline = settings.dryrun_deadline_seconds
        else:
            deadline = estimates.deadline_seconds(funded_cents=run.funded_cents,
                                                  hourly_cents=machine.hourly_cents(run.spot))
        return await Job.create(
            id=uuid.uuid4(), run=run, kind=kind, status="pending", executor=self.executor.name,
            deadline_seconds=deadline, spec={"parameters": params},
        )

    async def launch(self, job_id: uuid.UUID) -> None:
        """MLflow run + executor submit. Any failure ends the job with a platform error."""
        job = await Job.get(id=job_id)
        if job.handle or JobStatus(job.status).terminal:
            return
        run = await Run.get(id=job.run_id)
        try:
            project = await Project.get(id=run.project_id)
            project_mlp = await mlproject.load_mlproject(run.uri, run.commit_sha)
            entry = project_mlp.entry_point(run.entry_point)
            command = mlproject.render_command(entry, job.spec["parameters"])
            env = {"MLPATRON_JOB_ID": str(job.id), "MLPATRON_RUN_ID": str(run.id), "MLPATRON_JOB_KIND": job.kind}
            if self.tracker is not None:
                experiment_id = await self.tracker.ensure_experiment(f"mlpatron-project-{project.id}")
                mlflow_run_id = await self.tracker.create_run(
                    experiment_id, f"{run.title} [{job.kind}]",
                    {"mlpatron.run_id": str(run.id), "mlpatron.job_id": str(job.id), "mlpatron.kind": job.kind},
                )
                job.mlflow_experiment_id, job.mlflow_run_id = experiment_id, mlflow_run_id
                env |= {"MLFLOW_TRACKING_URI": self.tracker.tracking_uri, "MLFLOW_EXPERIMENT_ID": experiment_id,
                        "MLFLOW_RUN_ID": mlflow_run_id}
            spec = JobSpec(
                job_id=str(job.id), run_id=str(run.id), kind=job.kind, repo_url=run.uri, commit_sha=run.commit_sha,
                command=command, env=env, deadline_seconds=job.deadline_seconds, image=run.image,
                gpu_type=run.gpu_type, gpu_count=run.gpu_count, machine_type=run.machine_type, spot=run.spot,
            )
            job.spec = {**job.spec, "command": command, "image": run.image}
            await job.save(update_fields=["mlflow_experiment_id", "mlflow_run_id", "spec"])
            fresh = await Job.get(id=job.id)
            if JobStatus(fresh.status).terminal:  # cancelled while we prepared it
                return
            handle = await self.executor.submit(spec)
            await Job.filter(id=job.id).update(handle={**handle, "owner": INSTANCE})
        except Exception as exc:  # tracking down, MLproject gone, executor refused: all end the job
            log.exception("job %s: launch failed", job.id)
            await self.recorder.job_update(JobUpdate(
                job_id=str(job.id), status=JobStatus.FAILED, at=_now(),
                error=JobError(platform=f"launch failed: {exc}"),
            ))

    async def start_funded_job(self, run_id: uuid.UUID) -> Job | None:
        """Idempotent: creates and launches the funded job only if the run is funded and has none."""
        async with in_transaction():
            run = await Run.select_for_update().get_or_none(id=run_id)
            if run is None or run.status != RunStatus.FUNDED or run.funded_job_id is not None:
                return None
            job = await self.create_job(run, "funded")
            run.funded_job_id = job.id
            await run.save(update_fields=["funded_job_id", "updated_at"])
        await self.launch(job.id)
        return job

    async def cancel_job(self, job: Job, reason: str = "cancelled by user") -> None:
        """Stop a job wherever it runs. A local job belongs to the API process that started it:
        the request is recorded on the job and every process is woken to check for its own."""
        if JobStatus(job.status).terminal:
            return
        if not job.handle:  # never submitted: nothing runs, end it in the database
            await self.recorder.job_update(JobUpdate(
                job_id=str(job.id), status=JobStatus.CANCELLED, at=_now(), error=JobError(platform=reason)))
            return
        if job.executor == "local" and not self._owns(job):
            await Job.filter(id=job.id).update(cancel_requested_at=_now())
            await bus.publish(CANCEL_TOPIC)
            return
        await self.executor.cancel(str(job.id), job.handle)

    def _owns(self, job: Job) -> bool:
        owner = (job.handle or {}).get("owner") or {}
        return owner == INSTANCE

    def start_cancel_listener(self) -> None:
        """Cancel this process's local jobs that another replica was asked to cancel."""

        async def loop() -> None:
            async with self.hub.listen(CANCEL_TOPIC) as signal:
                while True:
                    try:
                        requested = await Job.filter(status__in=["pending", "running"], executor="local",
                                                     cancel_requested_at__isnull=False)
                        for job in requested:
                            if self._owns(job):
                                await self.executor.cancel(str(job.id), job.handle)
                    except Exception:
                        log.exception("cancel listener failed; retrying")
                    await signal.wait(at_most=RECONCILE_SECONDS)

        task = asyncio.create_task(loop(), name="cancel-listener")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- run transitions ---------------------------------------------------------------------

    async def job_transition(self, job: Job, old: JobStatus, new: JobStatus) -> None:
        """Recorder listener: a job's end moves its run on (estimate after the dryrun, or the run's end)."""
        if not new.terminal:
            return
        if self.tracker is not None and job.mlflow_run_id:
            status = {JobStatus.SUCCEEDED: "FINISHED", JobStatus.FAILED: "FAILED"}.get(new, "KILLED")
            try:
                await self.tracker.finish_run(job.mlflow_run_id, status)
            except TrackingError:
                log.warning("job %s: could not close MLflow run", job.id)
        if job.kind == "dryrun":
            await self._dryrun_ended(job, new)
        else:
            await self._funded_ended(job, new)

    async def _dryrun_ended(self, job: Job, new: JobStatus) -> None:
        settings = get_settings()
        async with in_transaction():
            run = await Run.select_for_update().get(id=job.run_id)
            if run.status != RunStatus.DRYRUN:
                return
            old_status = run.status
            if new == JobStatus.SUCCEEDED:
                _, machine = resolve_machine(run.gpu_type, run.gpu_count, run.machine_type)
                seconds = ((job.finished_at or _now()) - (job.started_at or job.created_at)).total_seconds()
                try:
                    cost, duration, detail = estimates.estimate(
                        dryrun_seconds=seconds, dryrun_value=float(run.dryrun_override_value),
                        full_value=float(run.parameters[run.dryrun_override_param]),
                        startup_overhead_seconds=settings.startup_overhead_seconds, machine=machine, spot=run.spot,
                        max_seconds=settings.max_estimate_seconds, max_cents=settings.max_estimate_cents,
                    )
                except estimates.EstimateTooLarge as exc:
                    # The dryrun worked; the run it measures cannot be funded here. Say why on the dryrun job.
                    await Job.filter(id=job.id).update(error=JobError(platform=str(exc)).to_dict())
                    run.status = RunStatus.DRYRUN_FAILED.value
                else:
                    run.estimated_cost_cents, run.estimated_duration_seconds = cost, duration
                    run.estimate_detail = detail
                    run.status = RunStatus.AWAITING_FUNDING.value
            else:
                run.status = (RunStatus.DRYRUN_FAILED if new == JobStatus.FAILED else RunStatus.CANCELLED).value
            await run.save()
        await self.run_status_changed(run, old_status)

    async def _funded_ended(self, job: Job, new: JobStatus) -> None:
        async with in_transaction():
            run = await Run.select_for_update().get(id=job.run_id)
            old_status = run.status
            if run.status == RunStatus.FUNDED:
                run.status = {JobStatus.SUCCEEDED: RunStatus.COMPLETED, JobStatus.FAILED: RunStatus.FUNDED_FAILED}.get(
                    new, RunStatus.CANCELLED).value
                await run.save()
        if run.status != old_status:
            await self.run_status_changed(run, old_status)

    async def run_status_changed(self, run: Run, old_status: str) -> None:
        """After the commit: tell the listeners in order; one failing does not stop the others
        (the change is committed, what follows from it is best effort)."""
        for listener in self._run_listeners:
            try:
                await listener(run, old_status)
            except Exception:
                log.exception("run %s: status listener failed", run.id)

    async def funding_committed(self, funding: Funding, run: Run) -> None:
        """After a funding's commit; the money has moved, so a listener's failure is only logged."""
        for listener in self._funding_listeners:
            try:
                await listener(funding, run)
            except Exception:
                log.exception("run %s: funding listener failed", run.id)

    # ---- recovery ----------------------------------------------------------------------------

    async def reconcile(self) -> None:
        """Start funded runs that lack a job, move on runs whose job ended without them, launch jobs
        that were never submitted, and hand the executor the active jobs whose owner is gone (a
        local job whose API process died)."""
        stale = _now() - timedelta(seconds=30)
        # Funded a while ago and still no job: the process that closed the gap died before starting it.
        # A just-funded run is that process's to start; racing it helps nobody.
        for run in await Run.filter(status=RunStatus.FUNDED.value, funded_job_id=None, updated_at__lt=stale):
            await self.start_funded_job(run.id)
        await self.repair_ended_jobs()
        # Only this executor's jobs: another executor's (a migration, a mixed test session) are not ours to judge.
        active = await Job.filter(status__in=["pending", "running"], executor=self.executor.name)
        for job in active:
            if not job.handle and job.created_at < stale:
                await self.launch(job.id)
        orphans = [(str(j.id), j.handle) for j in active if j.handle and self._orphaned(j)]
        if orphans:
            await self.executor.reconcile(orphans)

    async def repair_ended_jobs(self) -> None:
        """A run still in `dryrun` / `funded` whose job has ended: the transition's consequence
        failed (e.g. the database was briefly away). Apply it again; the money part and the run
        part are both idempotent, so a transition being handled right now is not doubled."""
        runs = await Run.filter(status__in=[RunStatus.DRYRUN.value, RunStatus.FUNDED.value]).only(
            "id", "status", "dryrun_job_id", "funded_job_id")
        job_ids = [r.dryrun_job_id if r.status == RunStatus.DRYRUN else r.funded_job_id for r in runs]
        ended = [s.value for s in JobStatus if s.terminal]
        for job in await Job.filter(id__in=[j for j in job_ids if j], status__in=ended):
            status = JobStatus(job.status)
            log.warning("run %s: its %s job ended as %s without moving it on; repairing", job.run_id, job.kind,
                        job.status)
            if job.kind == "dryrun":
                await self._dryrun_ended(job, status)
            else:
                await settle_funded_job(job, status, status)
                await self._funded_ended(job, status)

    def start_reconciler(self, every_seconds: float = RECONCILE_SECONDS) -> None:
        """Reconcile now (start-up) and then periodically, in the background."""

        async def loop() -> None:
            while True:
                try:
                    await self.reconcile()
                except Exception:
                    log.exception("reconcile failed; retrying")
                await asyncio.sleep(every_seconds)

        task = asyncio.create_task(loop(), name="reconciler")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _orphaned(self, job: Job) -> bool:
        if job.executor != "local":
            return True  # the Kubernetes watcher re-attaches by label
        owner = (job.handle or {}).get("owner") or {}
        if owner.get("host") != INSTANCE["host"]:
            return False
        if owner.get("pid") == INSTANCE["pid"]:
            return False
        try:
            os.kill(int(owner.get("pid", 0)), 0)
            return False  # its process is alive: another replica owns it
        except (ProcessLookupError, ValueError):
            return True
        except PermissionError:
            return False

    async def close(self) -> None:
        await asyncio.gather(*(cancel_and_wait(task) for task in list(self._tasks)), return_exceptions=True)
        await self.executor.close()
        if self.tracker is not None:
            await self.tracker.close()
