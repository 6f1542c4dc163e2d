"""GraphQL types of what jobs produced: metrics (NaN and infinities typed), parameters, tags,
artifacts (keyset pages, download URLs), a run's results and run comparisons."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated
from urllib.parse import quote

import strawberry
from strawberry.dataloader import DataLoader

from app.api.context import Info
from app.api.errors import BadInput, ServiceUnavailable
from app.api.ids import encode_id
from app.api.nodes import ModelNode
from app.api.pagination import Connection, Keyset, connection
from app.core.settings import get_settings
from app.jobs import results
from app.jobs.downloads import ROUTE_PREFIX
from app.jobs.models import Job
from app.runs.models import Run
from app.runs.results import RunHistories, results_job_id
from app.tracking.mlflow import ArtifactEntry, MetricPoint, MetricSpecial, RunData, TrackingError

if TYPE_CHECKING:
    from app.api.jobs.types import JobType
    from app.api.runs.types import RunType

strawberry.enum(MetricSpecial, name="MetricSpecial",
                description="A metric value JSON cannot carry as a number: NaN, +infinity, -infinity.")

# Seconds after which a read that found MLflow unreachable is worth retrying.
TRACKING_RETRY_SECONDS = 10


@strawberry.type
class Metric:
    key: str
    value: float | None = strawberry.field(description="Null exactly when `special` is set (NaN or ±infinity).")
    special: MetricSpecial | None = strawberry.field(description="NAN, INF or NEG_INF; null for a finite value.")
    step: int
    timestamp: float

    @classmethod
    def of(cls, point: MetricPoint) -> Metric:
        special = point.special
        return cls(key=point.key, value=None if special else point.value, special=special, step=point.step,
                   timestamp=point.timestamp)


@strawberry.type
class KeyValue:
    key: str
    value: str


@strawberry.type
class Artifact:
    name: str
    path: str = strawberry.field(description="Relative to the job's artifact root; pass it to `artifacts(path:)` "
                                             "to list a directory.")
    is_dir: bool
    size: float | None = strawberry.field(description="Bytes (a Float: GraphQL's Int stops at 2 GiB); null for "
                                                      "a directory.")
    job_id: strawberry.Private[str]

    @strawberry.field(description="GET it (same visibility as the job; Range requests resume); null for a "
                                  "directory.")
    def download_url(self) -> str | None:
        if self.is_dir:
            return None
        return f"{get_settings().public_url}{ROUTE_PREFIX}{encode_id('Job', self.job_id)}/{quote(self.path)}"

    @classmethod
    def of(cls, job_id: str, entry: ArtifactEntry) -> Artifact:
        return cls(name=results.artifact_name(entry), path=entry.path, is_dir=entry.is_dir, size=entry.size,
                   job_id=job_id)


async def run_data(info: Info, mlflow_run_id: str | None) -> RunData | None:
    """The MLflow run's data, read once per request whatever asks for it (params, tags, results)."""
    tracker = info.context.require_services().tracker
    if tracker is None or not mlflow_run_id:
        return None

    async def load(run_ids: list[str]) -> list[RunData]:
        return list(await asyncio.gather(*(tracker.run_data(r) for r in run_ids)))

    loader: DataLoader[str, RunData] = info.context.loaders.batch("Job.runData", load)
    try:
        return await loader.load(mlflow_run_id)
    except TrackingError as exc:
        raise ServiceUnavailable(TRACKING_RETRY_SECONDS) from exc


async def artifacts_page(info: Info, job_id: str, mlflow_run_id: str | None, path: str, first: int | None,
                         after: str | None) -> Connection[Artifact]:
    keyset = Keyset.of(first, after, sort="path", pk="path")
    tracker = info.context.require_services().tracker
    if tracker is None or not mlflow_run_id:
        return await connection(keyset, [], lambda e: Artifact.of(job_id, e))
    try:
        entries = await results.artifacts_after(tracker, mlflow_run_id, path, keyset.after[0] if keyset.after else None)
    except results.UnsafeArtifactPath as exc:
        raise BadInput(f"Invalid argument path: {exc.fields['path']}") from exc
    except TrackingError as exc:
        raise ServiceUnavailable(TRACKING_RETRY_SECONDS) from exc
    return await connection(keyset, entries[: keyset.size + 1], lambda e: Artifact.of(job_id, e))


@strawberry.type
class RunResults:
    """The final value of every metric of the run's funded job, or of its dryrun before there is one."""

    metrics: list[Metric] = strawberry.field(description="Latest value of each metric, by key.")
    job_row: strawberry.Private[Job]

    @strawberry.field(description="The job these results come from (its `kind` says funded or dryrun).")
    def job(self) -> Annotated[JobType, strawberry.lazy("app.api.jobs.types")]:
        return ModelNode.of(self.job_row)


async def run_results(info: Info, run: Run) -> RunResults | None:
    job_id = results_job_id(run)
    job = await info.context.loaders.get(Job, job_id) if job_id else None
    data = await run_data(info, job.mlflow_run_id) if job else None
    if job is None or data is None:
        return None
    return RunResults(metrics=[Metric.of(p) for p in sorted(data.metrics, key=lambda p: p.key)], job_row=job)


@strawberry.type
class MetricHistory:
    key: str
    points: list[Metric] = strawberry.field(description="Every logged value, by step.")


@strawberry.type
class RunMetrics:
    histories: list[MetricHistory] = strawberry.field(description="One per requested key, in the order asked "
                                                                  "(empty points when the run never logged it).")
    run_row: strawberry.Private[Run]
    job_row: strawberry.Private[Job | None]

    @strawberry.field
    def run(self) -> Annotated[RunType, strawberry.lazy("app.api.runs.types")]:
        return ModelNode.of(self.run_row)

    @strawberry.field(description="The job the histories come from (funded, else dryrun); null before any ran.")
    def job(self) -> Annotated[JobType, strawberry.lazy("app.api.jobs.types")] | None:
        return ModelNode.of(self.job_row) if self.job_row else None


@strawberry.type
class RunComparison:
    runs: list[RunMetrics] = strawberry.field(description="In the order of `runIds`.")

    @classmethod
    def of(cls, found: list[RunHistories]) -> RunComparison:
        return cls(runs=[
            RunMetrics(run_row=r.run, job_row=r.job,
                       histories=[MetricHistory(key=k, points=[Metric.of(p) for p in pts])
                                  for k, pts in r.histories.items()])
            for r in found
        ])
