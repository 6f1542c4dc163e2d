"""GraphQL types of runs and jobs."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from app.accounts.models import User
from app.accounts.types import UserType
from app.api.context import Info
from app.api.errors import BadInput
from app.api.nodes import ModelNode
from app.api.pagination import Connection
from app.core.settings import get_settings
from app.execution.models import Job, JobLogLine, JobTransition
from app.funding.types import FundingType, LedgerEntryType, run_fundings, run_transactions
from app.projects.models import Project
from app.projects.types import ProjectType
from app.revisions.markdown import render_markdown
from app.revisions.types import RevisionType, revision_history
from app.runs.models import Run
from app.tracking.mlflow import TrackingError

MAX_LOG_TAIL = 5000


@strawberry.enum
class RunStatus(enum.Enum):
    DRYRUN = "dryrun"
    DRYRUN_FAILED = "dryrun_failed"
    AWAITING_FUNDING = "awaiting_funding"
    FUNDED = "funded"
    FUNDED_FAILED = "funded_failed"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


@strawberry.enum(name="JobStatus")
class JobStatusEnum(enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@strawberry.enum
class JobKind(enum.Enum):
    DRYRUN = "dryrun"
    FUNDED = "funded"


@strawberry.type
class Resources:
    gpu_type: str
    gpu_count: int
    machine_type: str
    spot: bool


@strawberry.type
class ContainerTerminated:
    reason: str
    exit_code: int | None


@strawberry.type
class K8sJobCondition:
    type: str
    reason: str
    message: str


@strawberry.type
class JobErrorType:
    """Check in order: `platform` is root cause when present; then `containerTerminated`
    (OOMKilled is root cause, Error → see logs); `k8sJobCondition` is never root cause."""

    platform: str | None
    container_terminated: ContainerTerminated | None
    k8s_job_condition: K8sJobCondition | None
    logs_url: str

    @classmethod
    def from_json(cls, job_id: str, raw: dict[str, Any]) -> JobErrorType:
        ct, kc = raw.get("container_terminated"), raw.get("k8s_job_condition")
        return cls(
            platform=raw.get("platform"),
            container_terminated=ContainerTerminated(reason=str(ct.get("reason", "")), exit_code=ct.get("exit_code"))
            if ct else None,
            k8s_job_condition=K8sJobCondition(type=str(kc.get("type", "")), reason=str(kc.get("reason", "")),
                                              message=str(kc.get("message", ""))) if kc else None,
            logs_url=f"{get_settings().public_url}/jobs/{job_id}/logs",
        )


@strawberry.type
class LogLine:
    seq: int
    stream: str = strawberry.field(description="stdout, stderr or event")
    line: str
    at: datetime

    @classmethod
    def from_model(cls, row: JobLogLine) -> LogLine:
        return cls(seq=row.seq, stream=row.stream, line=row.line, at=row.created_at)


@strawberry.type
class JobTransitionType:
    seq: int
    status: JobStatusEnum
    pending_info: str | None
    at: datetime


@strawberry.type
class Metric:
    key: str
    value: float
    step: int
    timestamp: float


async def _job_logs(job_id: str, tail: int, after_seq: int | None) -> list[LogLine]:
    if not (0 <= tail <= MAX_LOG_TAIL):
        raise BadInput(f"tail must be between 0 and {MAX_LOG_TAIL}")
    qs = JobLogLine.filter(job_id=job_id)
    if after_seq is not None:
        rows = await qs.filter(seq__gt=after_seq).order_by("seq").limit(tail)
    else:
        rows = list(reversed(await qs.order_by("-seq").limit(tail)))
    return [LogLine.from_model(r) for r in rows]


@strawberry.type(name="Job")
class JobType(ModelNode):
    model = Job
    id: relay.NodeID[str]
    kind: JobKind
    status: JobStatusEnum
    executor: str
    pending_info: str | None = strawberry.field(description="Why and where the job waits while pending.")
    mlflow_run_id: str | None
    mlflow_experiment_id: str | None
    deadline_seconds: int
    actual_cost_cents: int | None
    cost_detail: JSON | None
    spec: JSON
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    run_id: strawberry.Private[str]
    error_raw: strawberry.Private[dict[str, Any] | None]
    # Set by lists that already know it (the jobs board), saving one count query per job.
    known_queue_position: strawberry.Private[int | None] = None

    @classmethod
    def from_model(cls, row: Job) -> JobType:
        return cls(
            id=str(row.id), kind=JobKind(row.kind), status=JobStatusEnum(row.status), executor=row.executor,
            pending_info=row.pending_info, mlflow_run_id=row.mlflow_run_id,
            mlflow_experiment_id=row.mlflow_experiment_id, deadline_seconds=row.deadline_seconds,
            actual_cost_cents=row.actual_cost_cents, cost_detail=row.cost_detail,
            spec={**row.spec, "handle": {k: v for k, v in row.handle.items() if k in ("name", "namespace")}},
            created_at=row.created_at, started_at=row.started_at, finished_at=row.finished_at,
            run_id=str(row.run_id), error_raw=row.error,
        )

    @strawberry.field
    def error(self) -> JobErrorType | None:
        return JobErrorType.from_json(self.id, self.error_raw) if self.error_raw else None

    @strawberry.field(description="The last `tail` lines, or up to `tail` lines after `afterSeq`.")
    async def logs(self, tail: int = 100, after_seq: int | None = None) -> list[LogLine]:
        return await _job_logs(self.id, tail, after_seq)

    @strawberry.field(description="Every status transition, oldest first.")
    async def timeline(self) -> list[JobTransitionType]:
        rows = await JobTransition.filter(job_id=self.id).order_by("seq")
        return [JobTransitionType(seq=r.seq, status=JobStatusEnum(r.status), pending_info=r.pending_info, at=r.at)
                for r in rows]

    @strawberry.field(description="The MLflow UI page of this job's run (metrics, params, artifacts).")
    def mlflow_run_url(self) -> str | None:
        settings = get_settings()
        base = (settings.mlflow_public_url or settings.mlflow_tracking_uri).rstrip("/")
        if not base or not self.mlflow_run_id:
            return None
        return f"{base}/#/experiments/{self.mlflow_experiment_id}/runs/{self.mlflow_run_id}"

    @strawberry.field(description="Latest value of every metric, from MLflow.")
    async def metrics(self) -> list[Metric]:
        from app.runs.lifecycle import lifecycle

        tracker = lifecycle().tracker
        if tracker is None or not self.mlflow_run_id:
            return []
        try:
            points = await tracker.latest_metrics(self.mlflow_run_id)
        except TrackingError:
            return []
        return [Metric(key=p.key, value=p.value, step=p.step, timestamp=p.timestamp) for p in points]

    @strawberry.field(description="Every logged value of one metric, by step, from MLflow.")
    async def metric_history(self, key: str) -> list[Metric]:
        from app.runs.lifecycle import lifecycle

        tracker = lifecycle().tracker
        if tracker is None or not self.mlflow_run_id:
            return []
        try:
            points = await tracker.metric_history(self.mlflow_run_id, key)
        except TrackingError:
            return []
        return [Metric(key=p.key, value=p.value, step=p.step, timestamp=p.timestamp) for p in points]

    @strawberry.field(description="Pending jobs ahead of this one (1 = next), or null when not pending.")
    async def queue_position(self) -> int | None:
        if self.status != JobStatusEnum.PENDING:
            return None
        if self.known_queue_position is not None:
            return self.known_queue_position
        return await Job.filter(status="pending", created_at__lt=self.created_at).count() + 1

    @strawberry.field
    async def run(self, info: Info) -> RunType:
        return RunType.from_model(await info.context.loaders.require(Run, self.run_id))

    @strawberry.field
    async def project(self, info: Info) -> ProjectType:
        run = await info.context.loaders.require(Run, self.run_id)
        return ProjectType.from_model(await info.context.loaders.require(Project, run.project_id))


@strawberry.type(name="Run")
class RunType(ModelNode):
    model = Run
    id: relay.NodeID[str]
    title: str
    status: RunStatus
    uri: str
    version: str
    commit_sha: str
    entry_point: str
    parameters: JSON
    resources: Resources
    image: str | None
    dryrun_override_param: str
    dryrun_override_value: str
    notes: str
    notes_version: int
    estimated_cost_cents: int | None
    estimated_duration_seconds: int | None
    estimate_detail: JSON | None = strawberry.field(description="Every input of the estimate, to check it by hand.")
    funded_cents: int
    funding_gap_cents: int
    created_at: datetime
    updated_at: datetime
    project_id: strawberry.Private[str]
    creator_id: strawberry.Private[str]
    dryrun_job_id: strawberry.Private[str | None]
    funded_job_id: strawberry.Private[str | None]

    @classmethod
    def from_model(cls, row: Run) -> RunType:
        return cls(
            id=str(row.id), title=row.title, status=RunStatus(row.status), uri=row.uri, version=row.version,
            commit_sha=row.commit_sha, entry_point=row.entry_point, parameters=row.parameters,
            resources=Resources(gpu_type=row.gpu_type, gpu_count=row.gpu_count, machine_type=row.machine_type,
                                spot=row.spot),
            image=row.image, dryrun_override_param=row.dryrun_override_param,
            dryrun_override_value=row.dryrun_override_value, notes=row.notes, notes_version=row.notes_version,
            estimated_cost_cents=row.estimated_cost_cents, estimated_duration_seconds=row.estimated_duration_seconds,
            estimate_detail=row.estimate_detail, funded_cents=row.funded_cents,
            funding_gap_cents=row.funding_gap_cents, created_at=row.created_at, updated_at=row.updated_at,
            project_id=str(row.project_id), creator_id=str(row.creator_id),
            dryrun_job_id=str(row.dryrun_job_id) if row.dryrun_job_id else None,
            funded_job_id=str(row.funded_job_id) if row.funded_job_id else None,
        )

    @strawberry.field
    def notes_html(self) -> str:
        return render_markdown(self.notes)

    @strawberry.field(description="Who funded the run, newest first (public).")
    async def fundings(self, info: Info, first: int | None = None,
                       after: str | None = None) -> Connection[FundingType]:
        return await run_fundings(info, self.id, first, after)

    @strawberry.field(description="Movements of the run's escrow: fundings in, cost and refunds out (public).")
    async def transactions(self, first: int | None = None, after: str | None = None) -> Connection[LedgerEntryType]:
        return await run_transactions(self.id, first, after)

    @strawberry.field(description="Every version of the notes, newest first.")
    async def notes_history(self, first: int | None = None, after: str | None = None, last: int | None = None,
                            before: str | None = None) -> Connection[RevisionType]:
        return await revision_history("run", self.id, first=first, after=after, last=last, before=before)

    async def _job(self, info: Info, job_id: str | None) -> JobType | None:
        row = await info.context.loaders.get(Job, job_id) if job_id else None
        return JobType.from_model(row) if row else None

    @strawberry.field
    async def dryrun_job(self, info: Info) -> JobType | None:
        return await self._job(info, self.dryrun_job_id)

    @strawberry.field
    async def funded_job(self, info: Info) -> JobType | None:
        return await self._job(info, self.funded_job_id)

    @strawberry.field(description="While in `dryrun` or `funded`: the active job's status (pending or running).")
    async def active_job_status(self, info: Info) -> JobStatusEnum | None:
        job_id = {RunStatus.DRYRUN: self.dryrun_job_id, RunStatus.FUNDED: self.funded_job_id}.get(self.status)
        job = await self._job(info, job_id)
        return job.status if job else None

    @strawberry.field
    async def project(self, info: Info) -> ProjectType:
        return ProjectType.from_model(await info.context.loaders.require(Project, self.project_id))

    @strawberry.field
    async def creator(self, info: Info) -> UserType:
        return UserType.from_model(await info.context.loaders.require(User, self.creator_id))
