"""GraphQL types of what jobs produced: metrics (NaN and infinities typed), parameters, tags,
artifacts (keyset pages, download URLs). A run's results and run comparisons: app.api.runs.result_types."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import strawberry
from strawberry.dataloader import DataLoader

from app.api.context import Info
from app.api.errors import BadInput, ServiceUnavailable
from app.api.ids import encode_id
from app.api.pagination import Connection, Keyset, connection
from app.core.settings import get_settings
from app.jobs import results
from app.jobs.downloads import ROUTE_PREFIX
from app.tracking.mlflow import ArtifactEntry, MetricPoint, MetricSpecial, RunData, TrackingError

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
