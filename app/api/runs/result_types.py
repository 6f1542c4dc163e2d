"""GraphQL types of a run's results (the final metrics of its funded job, else its dryrun) and of
runs compared side by side (`compareRuns`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry

from app.api.context import Info
from app.api.jobs.result_types import Metric, run_data
from app.api.nodes import ModelNode
from app.jobs.models import Job
from app.runs.models import Run
from app.runs.results import RunHistories, results_job_id

if TYPE_CHECKING:
    from app.api.jobs.types import JobType
    from app.api.runs.types import RunType


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
