"""Runs API: parse an MLproject, create/copy/cancel/update/fund runs, read runs and discover them across projects."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.scalars import JSON
from tortoise.queryset import QuerySet

from app.api import ratelimit
from app.api.compiled import Root, reads
from app.api.context import Info
from app.api.errors import (
    BadInput,
    Error,
    Forbidden,
    InvalidStateError,
    RateLimitedError,
    ServiceUnavailable,
    ValidationFailed,
    converts,
    typed_errors,
)
from app.api.funding.types import FundingType, InsufficientFundsError
from app.api.ids import decode_id
from app.api.jobs.result_types import TRACKING_RETRY_SECONDS
from app.api.jobs.schema import JobIdInput, JobSuccess
from app.api.jobs.types import JobType
from app.api.pagination import Connection, Keyset, page_of
from app.api.revisions.types import (
    EditNotApplicableError,
    PatchTextInput,
    VersionConflictError,
    VersionedBody,
    patch_body,
)
from app.api.runs.result_types import RunComparison
from app.api.runs.types import RunType
from app.core.errors import ValidationError
from app.execution import mlproject
from app.funding.models import SurplusPolicy
from app.jobs.models import Job
from app.projects.models import Project
from app.runs import results, services
from app.runs.copy import CopyOverrides, Resources, copy_run
from app.runs.discovery import SEARCH_MAX, DiscoveryOrder, discover
from app.runs.fund import FundingSource, RunNotFundable, fund_run
from app.runs.models import Run, RunStatus
from app.tracking.mlflow import TrackingError

# ---- MLproject parsing ------------------------------------------------------------------------

PARSE_PER_HOUR = 60  # per user: each parse clones from a remote repository


@strawberry.type
class ParameterSpec:
    name: str
    type: str
    default: str | None
    required: bool


@strawberry.type
class EntryPointSpec:
    name: str
    command: str
    parameters: list[ParameterSpec]
    dryrun_suggestion: DryrunSuggestion | None


@strawberry.type
class DryrunSuggestion:
    param: str
    value: str


@strawberry.type
class ParsedMLproject:
    uri: str
    version: str
    commit_sha: str
    name: str | None
    image: str | None
    entry_points: list[EntryPointSpec]


@strawberry.type(name="MLprojectError")
class MLprojectErrorType(Error):
    reason: str = strawberry.field(description="MLPROJECT_MISSING, MLPROJECT_INVALID, UNKNOWN_ENTRY_POINT, …")


@strawberry.type(name="GitError")
class GitErrorType(Error):
    reason: str = strawberry.field(description="UNKNOWN_REF, REPO_UNREACHABLE, …")


@converts(services.MLProjectProblem)
def _mlproject_error(err: services.MLProjectProblem) -> MLprojectErrorType:
    return MLprojectErrorType(message=err.message, code=err.code, reason=err.reason)


@converts(services.GitProblem)
def _git_error(err: services.GitProblem) -> GitErrorType:
    return GitErrorType(message=err.message, code=err.code, reason=err.reason)


def _parsed(p: services.ParsedProject) -> ParsedMLproject:
    def entry(ep: mlproject.EntryPoint) -> EntryPointSpec:
        suggestion = mlproject.dryrun_suggestion(ep)
        return EntryPointSpec(
            name=ep.name, command=ep.command,
            parameters=[ParameterSpec(name=x.name, type=x.type, default=None if x.default is None else str(x.default),
                                      required=x.required) for x in ep.parameters],
            dryrun_suggestion=DryrunSuggestion(param=suggestion[0], value=str(suggestion[1])) if suggestion else None,
        )

    return ParsedMLproject(uri=p.uri, version=p.version, commit_sha=p.commit_sha, name=p.project.name,
                           image=p.project.image, entry_points=[entry(e) for e in p.project.entry_points.values()])


ParseMLprojectPayload = Annotated[
    ParsedMLproject | ValidationFailed | MLprojectErrorType | GitErrorType, strawberry.union("ParseMLprojectPayload")
]


@strawberry.type
class RunsQuery:
    @strawberry.field
    async def run(self, info: Info, id: strawberry.ID) -> RunType:
        return RunType.from_model(await info.context.loaders.node(Run, id, "Run"))



@strawberry.type
class MLprojectQuery:
    @strawberry.field(description="Resolve a repository version and read its MLproject (authenticated); "
                                  "an empty `version` is the repository's default branch.")
    @typed_errors
    async def parse_mlproject(self, info: Info, uri: str, version: str) -> ParseMLprojectPayload:
        user = info.context.require_user()
        await ratelimit.hit(info.context.require_services(), "parse", str(user.id), PARSE_PER_HOUR, 3600)
        return _parsed(await services.parse(uri, version))


# ---- mutations ----------------------------------------------------------------------------------


@strawberry.input
class ResourcesInput:
    gpu_type: str
    gpu_count: int = 1
    machine_type: str | None = None
    spot: bool = False


@strawberry.input
class CreateRunInput:
    project_id: strawberry.ID
    title: str
    uri: str
    version: str
    resources: ResourcesInput
    dryrun_override_param: str
    dryrun_override_value: JSON
    entry_point: str = "main"
    parameters: JSON = strawberry.field(default_factory=dict)
    notes: str = ""
    idempotency_key: str | None = strawberry.field(
        default=None, description="Retrying with the same key returns the same run and never submits twice."
    )


@strawberry.type
class RunSuccess:
    run: RunType


@strawberry.input
class RunIdInput:
    id: strawberry.ID


@strawberry.input
class UpdateRunInput:
    id: strawberry.ID
    title: str | None = None
    notes: str | None = None
    notes_base_version: int | None = None
    edit_summary: str = ""


CreateRunPayload = Annotated[
    RunSuccess | ValidationFailed | MLprojectErrorType | GitErrorType | RateLimitedError,
    strawberry.union("CreateRunPayload"),
]
CancelRunPayload = Annotated[RunSuccess | InvalidStateError, strawberry.union("CancelRunPayload")]
PatchRunNotesPayload = Annotated[
    RunSuccess | VersionConflictError | EditNotApplicableError | ValidationFailed,
    strawberry.union("PatchRunNotesPayload"),
]
RUN_NOTES = VersionedBody(Run, "Run", "run", "notes", "notes_version", max_length=services.NOTES_MAX)


def _creator_only(user, run: Run) -> None:
    if run.creator_id != user.id:
        raise Forbidden("Only the run's creator can edit its notes.")


UpdateRunPayload = Annotated[
    RunSuccess | ValidationFailed | VersionConflictError, strawberry.union("UpdateRunPayload")
]


@strawberry.type
class RunsMutation:
    @strawberry.mutation(description="Project owner. Creates the run in DRYRUN and submits its dryrun job at once.")
    @typed_errors
    async def create_run(self, info: Info, input: CreateRunInput) -> CreateRunPayload:
        user = info.context.require_user()
        project = await info.context.loaders.node(Project, input.project_id, "Project")
        if not isinstance(input.parameters, dict):
            raise ValidationError({"parameters": "must be an object of name → value"})
        request = services.RunRequest(
            title=input.title, uri=input.uri, version=input.version, entry_point=input.entry_point,
            parameters=input.parameters, gpu_type=input.resources.gpu_type, gpu_count=input.resources.gpu_count,
            machine_type=input.resources.machine_type, spot=input.resources.spot,
            dryrun_override_param=input.dryrun_override_param, dryrun_override_value=input.dryrun_override_value,
            notes=input.notes, idempotency_key=input.idempotency_key,
        )
        run = await services.create_run(info.context.lifecycle, user, project, request)
        return RunSuccess(run=RunType.from_model(run))

    @strawberry.mutation(description="Creator or project owner. Refunds patrons if the funded job has not started.")
    @typed_errors
    async def cancel_run(self, info: Info, input: RunIdInput) -> CancelRunPayload:
        user = info.context.require_user()
        run = await info.context.loaders.node(Run, input.id, "Run")
        run = await services.cancel_run(info.context.lifecycle, user, run.id)
        return RunSuccess(run=RunType.from_model(run))

    @strawberry.mutation(description="Stop a job; cancelling a run's active job cancels the run.")
    async def cancel_job(self, info: Info, input: JobIdInput) -> JobSuccess:
        user = info.context.require_user()
        job = await info.context.loaders.node(Job, input.id, "Job")
        return JobSuccess(job=JobType.from_model(await services.cancel_job(info.context.lifecycle, user, job.id)))

    @strawberry.mutation(description="Creator only. Title and notes (full replace, optional base version).")
    @typed_errors
    async def update_run(self, info: Info, input: UpdateRunInput) -> UpdateRunPayload:
        user = info.context.require_user()
        run = await info.context.loaders.node(Run, input.id, "Run")
        run = await services.update_run(user, run, title=input.title, notes=input.notes,
                                        notes_base_version=input.notes_base_version,
                                        edit_summary=input.edit_summary)
        return RunSuccess(run=RunType.from_model(run))

    @strawberry.mutation(description="Creator only. Search/replace edits on the run's notes at a base version.")
    async def patch_run_notes(self, info: Info, input: PatchTextInput) -> PatchRunNotesPayload:
        return await patch_body(info, input, RUN_NOTES, authorize=_creator_only,
                                success=lambda r: RunSuccess(run=RunType.from_model(r)))

    @strawberry.mutation(description="Admin: start a funded run's job now (the reconciler does this by itself).")
    async def start_funded_job(self, info: Info, input: RunIdInput) -> RunSuccess:
        info.context.require_admin()
        run = await info.context.loaders.node(Run, input.id, "Run")
        await info.context.lifecycle.start_funded_job(run.id)
        return RunSuccess(run=RunType.from_model(await Run.get(id=run.id)))


# ---- fundRun ------------------------------------------------------------------------------------

strawberry.enum(FundingSource, name="FundingSource")


@strawberry.input
class FundRunInput:
    run_id: strawberry.ID
    amount_cents: int = strawberry.field(
        description="Offered amount; at most the run's funding gap is taken (see `Funding.amountCents`)."
    )
    surplus_policy: SurplusPolicy = SurplusPolicy.TO_PROJECT
    idempotency_key: str | None = strawberry.field(
        default=None, description="Retrying with the same key returns the first funding and charges once."
    )
    source: FundingSource = strawberry.field(
        default=FundingSource.WALLET, description="PROJECT_BALANCE: the project owner spends the project's balance."
    )


@strawberry.type
class FundRunSuccess:
    funding: FundingType
    run: RunType
    requested_cents: int = strawberry.field(description="The amount offered; `funding.amountCents` was taken.")
    replayed: bool = strawberry.field(description="True when an earlier call with this idempotency key answered.")


@strawberry.type(name="RunNotFundable")
class RunNotFundableError(Error):
    status: RunStatus


@converts(RunNotFundable)
def _not_fundable(err: RunNotFundable) -> RunNotFundableError:
    return RunNotFundableError(message=err.message, code=err.code, status=RunStatus(err.status))


FundRunPayload = Annotated[
    FundRunSuccess | InsufficientFundsError | RunNotFundableError | ValidationFailed, strawberry.union("FundRunPayload")
]


@strawberry.type
class FundRunMutation:
    @strawberry.mutation(description="Fund a run awaiting funding from your wallet (credit first, then cash).")
    @typed_errors
    async def fund_run(self, info: Info, input: FundRunInput) -> FundRunPayload:
        user = info.context.require_user()
        run_id = decode_id(input.run_id, "Run")
        result = await fund_run(info.context.lifecycle, user, run_id, input.amount_cents, input.surplus_policy,
                                input.source, input.idempotency_key)
        return FundRunSuccess(funding=FundingType.from_model(result.funding), run=RunType.from_model(result.run),
                              requested_cents=input.amount_cents, replayed=result.replayed)


# ---- Query.runs: runs of every project, for patrons looking for something to fund ----------------


RunDiscoveryOrder = strawberry.enum(DiscoveryOrder, name="RunDiscoveryOrder", description=(
    "NEWEST: newest first. SMALLEST_GAP: closest to starting (smallest remaining funding gap) first. "
    "LARGEST_FUNDED_SHARE: largest share of the estimate already funded first."))


def discovery_page(first: int | None = None, after: str | None = None, last: int | None = None,
                   before: str | None = None, status: RunStatus | None = RunStatus.AWAITING_FUNDING,
                   project_id: strawberry.ID | None = None, search: str | None = None,
                   order_by: DiscoveryOrder = DiscoveryOrder.NEWEST) -> tuple[QuerySet[Run], Keyset]:
    """The runs `runs(...)` pages, and how (what its resolver and compiled reads both read)."""
    text = search.strip() if search else None
    if text and len(text) > SEARCH_MAX:
        raise BadInput(f"`search` is at most {SEARCH_MAX} characters.")
    qs = discover(status=status, project_id=decode_id(project_id, "Project") if project_id else None,
                  text=text, order=order_by)
    return qs, Keyset.of(first, after, last, before, sort=order_by.value)


@strawberry.type
class RunDiscoveryQuery:
    @strawberry.field(description="Runs of every project (public). Without arguments: the runs awaiting funding, "
                                  "newest first. Pass `status: null` for every status.")
    @reads(Root(discovery_page))
    async def runs(
        self, info: Info, first: int | None = None, after: str | None = None, last: int | None = None,
        before: str | None = None, status: RunStatus | None = RunStatus.AWAITING_FUNDING,
        project_id: strawberry.ID | None = None,
        search: Annotated[str | None, strawberry.argument(description="Words of the run's title or notes, its "
                                                          "project's title, or the researcher's handle.")] = None,
        order_by: DiscoveryOrder = DiscoveryOrder.NEWEST,
    ) -> Connection[RunType]:
        qs, keyset = discovery_page(first, after, last, before, status, project_id, search, order_by)
        return await page_of(qs, keyset, RunType.from_model)


# ---- copyRun: re-run an existing run with optional overrides -------------------------------------


@strawberry.input(description="The source run's configuration, with what is given here replacing it.")
class CopyRunInput:
    run_id: strawberry.ID
    title: str | None = strawberry.field(default=None, description="Default: the source's title + ' (copy)'.")
    version: str | None = strawberry.field(
        default=None, description="Default: the source's version, resolved again (a branch may have moved); "
                                  "pass the source's `commitSha` to run exactly the same code.")
    entry_point: str | None = strawberry.field(
        default=None, description="Another entry point starts from no parameters but those given here.")
    parameters: JSON | None = strawberry.field(
        default=None, description="Merged over the source's parameters (name → value).")
    resources: ResourcesInput | None = strawberry.field(default=None, description="Replaces all resources.")
    dryrun_override_param: str | None = None
    dryrun_override_value: JSON | None = None
    notes: str | None = strawberry.field(default=None, description="Default: empty.")
    idempotency_key: str | None = strawberry.field(
        default=None, description="Retrying with the same key returns the same run and never submits twice "
                                  "(the keys are shared with createRun).")


CopyRunPayload = Annotated[
    RunSuccess | ValidationFailed | MLprojectErrorType | GitErrorType | RateLimitedError,
    strawberry.union("CopyRunPayload"),
]


@strawberry.type
class CopyRunMutation:
    @strawberry.mutation(description="Project owner. A new run from an existing one (`Run.copiedFrom`), created "
                                     "in DRYRUN with its own dryrun job, exactly as createRun would.")
    @typed_errors
    async def copy_run(self, info: Info, input: CopyRunInput) -> CopyRunPayload:
        user = info.context.require_user()
        source = await info.context.loaders.node(Run, input.run_id, "Run")
        if input.parameters is not None and not isinstance(input.parameters, dict):
            raise ValidationError({"parameters": "must be an object of name → value"})
        r = input.resources
        overrides = CopyOverrides(
            title=input.title, version=input.version, entry_point=input.entry_point, parameters=input.parameters,
            resources=Resources(r.gpu_type, r.gpu_count, r.machine_type, r.spot) if r else None,
            dryrun_override_param=input.dryrun_override_param, dryrun_override_value=input.dryrun_override_value,
            notes=input.notes, idempotency_key=input.idempotency_key,
        )
        run = await copy_run(info.context.lifecycle, user, source, overrides)
        return RunSuccess(run=RunType.from_model(run))


CompareRunsPayload = Annotated[RunComparison | ValidationFailed, strawberry.union("CompareRunsPayload")]


@strawberry.type
class CompareRunsQuery:
    @strawberry.field(description=f"Metric histories of several runs (any projects) for chosen keys, in one round "
                                  f"trip: each run's funded job, else its dryrun. At most {results.MAX_COMPARE_RUNS} "
                                  f"runs and {results.MAX_COMPARE_KEYS} keys (ValidationFailed beyond, or for an "
                                  f"unknown run: `runIds.N`).")
    @typed_errors
    async def compare_runs(self, info: Info, run_ids: list[strawberry.ID], keys: list[str]) -> CompareRunsPayload:
        try:
            found = await results.compare_runs(info.context.require_services().tracker, [str(r) for r in run_ids],
                                               keys)
        except TrackingError as exc:
            raise ServiceUnavailable(TRACKING_RETRY_SECONDS) from exc
        return RunComparison.of(found)
