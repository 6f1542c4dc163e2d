"""GraphQL types of jobs: status, errors, logs, timeline, metrics."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from app.api.context import Info
from app.api.errors import BadInput
from app.api.jobs.environment_types import JobEnvironmentType, job_environment
from app.api.jobs.loaders import log_tail, queue_position, timeline
from app.api.jobs.result_types import Artifact, KeyValue, Metric, artifacts_page, run_data
from app.api.nodes import ModelNode
from app.api.pagination import Connection
from app.core.settings import get_settings
from app.jobs import logs
from app.jobs.models import Job, JobLogLine
from app.jobs.results import user_tags
from app.jobs.status import JobKind, JobStatus
from app.projects.models import Project
from app.runs.models import Run
from app.tracking.mlflow import TrackingError

if TYPE_CHECKING:
    from app.api.projects.types import ProjectType
    from app.api.runs.types import RunType

strawberry.enum(JobStatus, name="JobStatus")
strawberry.enum(JobKind, name="JobKind")



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
    def from_model(cls, row: JobLogLine | logs.StoredLine) -> LogLine:
        return cls(seq=row.seq, stream=row.stream, line=row.line, at=row.created_at)


@strawberry.type
class JobTransitionType:
    seq: int
    status: JobStatus
    pending_info: str | None
    at: datetime


def check_tail(tail: int) -> None:
    if not (0 <= tail <= logs.MAX_LOG_TAIL):
        raise BadInput(f"tail must be between 0 and {logs.MAX_LOG_TAIL}")


@strawberry.type(name="Job")
class JobType(ModelNode):
    model = Job
    id: relay.NodeID[str]
    kind: JobKind
    status: JobStatus
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
            id=str(row.id), kind=JobKind(row.kind), status=JobStatus(row.status), executor=row.executor,
            pending_info=row.pending_info, mlflow_run_id=row.mlflow_run_id,
            mlflow_experiment_id=row.mlflow_experiment_id, deadline_seconds=row.deadline_seconds,
            actual_cost_cents=row.actual_cost_cents, cost_detail=row.cost_detail,
            spec=JSON({**row.spec, "handle": {k: v for k, v in row.handle.items() if k in ("name", "namespace")}}),
            created_at=row.created_at, started_at=row.started_at, finished_at=row.finished_at,
            run_id=str(row.run_id), error_raw=row.error,
        )

    @strawberry.field
    def error(self) -> JobErrorType | None:
        return JobErrorType.from_json(self.id, self.error_raw) if self.error_raw else None

    @strawberry.field(description="The last `tail` lines, or up to `tail` lines after `afterSeq`.")
    async def logs(self, info: Info, tail: int = 100, after_seq: int | None = None) -> list[LogLine]:
        check_tail(tail)
        return [LogLine.from_model(r) for r in await log_tail(info, self.id, tail, after_seq)]

    @strawberry.field(description="Every status transition, oldest first.")
    async def timeline(self, info: Info) -> list[JobTransitionType]:
        rows = await timeline(info, self.id)
        return [JobTransitionType(seq=r.seq, status=JobStatus(r.status), pending_info=r.pending_info, at=r.at)
                for r in rows]

    @strawberry.field(description="What the job ran: repository, commit, exact command, parameters, and the image "
                                  "digest pulled (Kubernetes) or the Python and package versions (local).")
    async def environment(self, info: Info) -> JobEnvironmentType:
        return await job_environment(info, self.id, self.run_id)

    @strawberry.field(description="The MLflow UI page of this job's run (metrics, params, artifacts).")
    def mlflow_run_url(self) -> str | None:
        settings = get_settings()
        base = (settings.mlflow_public_url or settings.mlflow_tracking_uri).rstrip("/")
        if not base or not self.mlflow_run_id:
            return None
        return f"{base}/#/experiments/{self.mlflow_experiment_id}/runs/{self.mlflow_run_id}"

    @strawberry.field(description="Latest value of every metric, from MLflow.")
    async def metrics(self, info: Info) -> list[Metric]:
        tracker = info.context.require_services().tracker
        if tracker is None or not self.mlflow_run_id:
            return []
        try:
            points = await tracker.latest_metrics(self.mlflow_run_id)
        except TrackingError:
            return []
        return [Metric.of(p) for p in points]

    @strawberry.field(description="Every logged value of one metric, by step, from MLflow.")
    async def metric_history(self, info: Info, key: str) -> list[Metric]:
        tracker = info.context.require_services().tracker
        if tracker is None or not self.mlflow_run_id:
            return []
        try:
            points = await tracker.metric_history(self.mlflow_run_id, key)
        except TrackingError:
            return []
        return [Metric.of(p) for p in points]

    @strawberry.field(description="The MLflow parameters the job logged, by key.")
    async def params(self, info: Info) -> list[KeyValue]:
        data = await run_data(info, self.mlflow_run_id)
        return [KeyValue(key=k, value=v) for k, v in sorted(data.params.items())] if data else []

    @strawberry.field(description="The MLflow tags the job set, by key (not MLflow's `mlflow.*` nor the "
                                  "platform's `mlpatron.*`).")
    async def tags(self, info: Info) -> list[KeyValue]:
        data = await run_data(info, self.mlflow_run_id)
        return [KeyValue(key=k, value=v) for k, v in user_tags(data.tags).items()] if data else []

    @strawberry.field(description="One directory of the job's MLflow artifacts (`path` empty: the root), by path. "
                                  "Empty when `path` is no directory.")
    async def artifacts(self, info: Info, path: str = "", first: int | None = None,
                        after: str | None = None) -> Connection[Artifact]:
        return await artifacts_page(info, self.id, self.mlflow_run_id, path, first, after)

    @strawberry.field(description="Pending jobs ahead of this one (1 = next), or null when not pending.")
    async def queue_position(self, info: Info) -> int | None:
        if self.status != JobStatus.PENDING:
            return None
        if self.known_queue_position is not None:
            return self.known_queue_position
        return await queue_position(info, self.id)

    @strawberry.field
    async def run(self, info: Info) -> Annotated[RunType, strawberry.lazy("app.api.runs.types")]:
        return ModelNode.of(await info.context.loaders.require(Run, self.run_id))

    @strawberry.field
    async def project(self, info: Info) -> Annotated[ProjectType, strawberry.lazy("app.api.projects.types")]:
        run = await info.context.loaders.require(Run, self.run_id)
        return ModelNode.of(await info.context.loaders.require(Project, run.project_id))
