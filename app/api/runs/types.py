"""GraphQL type of runs."""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from app.accounts.models import User
from app.api.compiled import ToOne, reads
from app.api.context import Info
from app.api.funding.loaders import ledger_page, run_fundings
from app.api.jobs.environment_types import run_reproduce
from app.api.nodes import Column, Computed, ModelNode, RowFields
from app.api.pagination import Connection
from app.api.revisions.loaders import history
from app.api.runs.result_types import RunResults, run_results
from app.funding import ledger
from app.jobs.models import Job
from app.jobs.status import JobStatus
from app.projects.models import Project
from app.revisions.markdown import render_markdown
from app.runs.models import Run, RunStatus, funding_gap

if TYPE_CHECKING:
    from app.api.accounts.types import UserType
    from app.api.funding.types import FundingType, LedgerEntryType
    from app.api.jobs.types import JobType
    from app.api.projects.types import ProjectType
    from app.api.revisions.types import RevisionType

# Other domains' types, resolved by strawberry when the schema is built (this module imports none).
FundingRef = Annotated["FundingType", strawberry.lazy("app.api.funding.types")]
LedgerEntryRef = Annotated["LedgerEntryType", strawberry.lazy("app.api.funding.types")]
RevisionRef = Annotated["RevisionType", strawberry.lazy("app.api.revisions.types")]

strawberry.enum(RunStatus, name="RunStatus")


@strawberry.type
class Resources:
    gpu_type: str
    gpu_count: int
    machine_type: str
    spot: bool


# Each field of a run's type from its row (RowFields): built all at once, or each when first read.
RUN_FIELDS: dict[str, Callable[[Run], Any]] = {
    "id": Column("id", str),
    "title": Column("title"),
    "status": Column("status", RunStatus),
    **{name: Column(name) for name in ("uri", "version", "commit_sha", "entry_point")},
    "parameters": lambda row: JSON(row.parameters),
    "resources": lambda row: Resources(gpu_type=row.gpu_type, gpu_count=row.gpu_count,
                                       machine_type=row.machine_type, spot=row.spot),
    **{name: Column(name) for name in (
        "image", "dryrun_override_param", "dryrun_override_value", "notes", "notes_version", "estimated_cost_cents",
        "estimated_duration_seconds", "estimate_detail", "funded_cents", "created_at", "updated_at")},
    "funding_gap_cents": Computed(("estimated_cost_cents", "funded_cents"), funding_gap),
    **{name: Column(name, str) for name in (
        "project_id", "creator_id", "dryrun_job_id", "funded_job_id", "copied_from_id")},
}


@strawberry.type(name="Run")
class RunType(RowFields, ModelNode):
    model = Run
    row_fields = RUN_FIELDS
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
    copied_from_id: strawberry.Private[str | None] = None

    @strawberry.field
    def notes_html(self) -> str:
        return render_markdown(self.notes)

    @strawberry.field(description="Who funded the run, newest first (public).")
    async def fundings(self, info: Info, first: int | None = None,
                       after: str | None = None) -> Connection[FundingRef]:
        return await run_fundings(info, self.id, first, after)

    @strawberry.field(description="Movements of the run's escrow: fundings in, cost and refunds out (public).")
    async def transactions(self, info: Info, first: int | None = None,
                           after: str | None = None) -> Connection[LedgerEntryRef]:
        return await ledger_page(info, [ledger.run_escrow(self.id)], first, after)

    @strawberry.field(description="Every version of the notes, newest first.")
    async def notes_history(self, info: Info, first: int | None = None, after: str | None = None,
                            last: int | None = None, before: str | None = None) -> Connection[RevisionRef]:
        return await history(info, "run", self.id, first=first, after=after, last=last, before=before)

    async def _job(self, info: Info, job_id: str | None) -> Job | None:
        return await info.context.loaders.get(Job, job_id) if job_id else None

    @strawberry.field
    async def dryrun_job(self, info: Info) -> Annotated[JobType, strawberry.lazy("app.api.jobs.types")] | None:
        row = await self._job(info, self.dryrun_job_id)
        return ModelNode.of(row) if row else None

    @strawberry.field
    async def funded_job(self, info: Info) -> Annotated[JobType, strawberry.lazy("app.api.jobs.types")] | None:
        row = await self._job(info, self.funded_job_id)
        return ModelNode.of(row) if row else None

    @strawberry.field(description="Final value of every metric of the funded job (the dryrun's before there is "
                                  "one), with the step it was logged at; null before any job logged to MLflow.")
    async def results(self, info: Info) -> RunResults | None:
        return await run_results(info, await info.context.loaders.require(Run, self.id))

    @strawberry.field(description="A command line that runs the experiment again elsewhere: `mlflow run` of the "
                                  "funded job's commit, entry point and parameters (the dryrun's before there is a "
                                  "funded job), every argument shell-quoted; null before the run has a job. The "
                                  "job's `environment` says what it ran in.")
    async def reproduce(self, info: Info) -> str | None:
        return await run_reproduce(info, self.id)

    @strawberry.field(description="While in `dryrun` or `funded`: the active job's status (pending or running).")
    async def active_job_status(self, info: Info) -> JobStatus | None:
        job_id = {RunStatus.DRYRUN: self.dryrun_job_id, RunStatus.FUNDED: self.funded_job_id}.get(self.status)
        row = await self._job(info, job_id)
        return JobStatus(row.status) if row else None

    @strawberry.field(description="The run this one was copied from (copyRun), if any.")
    async def copied_from(self, info: Info) -> RunType | None:
        row = await info.context.loaders.get(Run, self.copied_from_id) if self.copied_from_id else None
        return RunType.from_model(row) if row else None

    @strawberry.field
    @reads(ToOne("project_id"))
    async def project(self, info: Info) -> Annotated[ProjectType, strawberry.lazy("app.api.projects.types")]:
        return ModelNode.of(await info.context.loaders.require(Project, self.project_id))

    @strawberry.field
    @reads(ToOne("creator_id"))
    async def creator(self, info: Info) -> Annotated[UserType, strawberry.lazy("app.api.accounts.types")]:
        return ModelNode.of(await info.context.loaders.require(User, self.creator_id))


@strawberry.enum
class RunOrder(enum.Enum):
    """How `Project.runs` is sorted."""

    NEWEST = "-created_at"
    OLDEST = "created_at"
