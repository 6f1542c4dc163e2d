"""Runs: parse an MLproject, create a run (and its dryrun), cancel, update."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from app.accounts.models import User
from app.catalog.catalog import MachineType, resolve_machine
from app.core import limits
from app.core.errors import DomainError, ErrorCode, Forbidden, InvalidState, QuotaExceeded, ValidationError
from app.core.settings import get_settings
from app.execution import git, mlproject
from app.funding import settlement
from app.funding.models import IdempotencyRecord
from app.jobs.models import Job
from app.projects.models import Project
from app.revisions import services as revisions
from app.runs import quotas
from app.runs.lifecycle import Lifecycle
from app.runs.models import ACTIVE_RUN_STATUSES, Run, RunStatus

TITLE_MAX = limits.TITLE
NOTES_MAX = limits.BODY


class MLProjectProblem(DomainError):
    code = ErrorCode.MLPROJECT_ERROR

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class GitProblem(DomainError):
    code = ErrorCode.GIT_ERROR

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ParsedProject:
    uri: str
    version: str
    commit_sha: str
    project: mlproject.MLProject


async def parse(uri: str, version: str) -> ParsedProject:
    """Resolve `uri@version` to a commit and read its MLproject; typed errors for every failure.

    An empty version is the repository's default branch, named in the answer."""
    try:
        url = git.validate_git_url(uri.strip(), allow_local=get_settings().allow_local_repos)
        version = version.strip() or await git.default_branch(url)
        sha = await git.resolve_ref(url, version)
        project = await mlproject.load_mlproject(url, sha)
    except git.GitError as exc:
        if exc.code == "INVALID_GIT_URL":
            raise ValidationError({"uri": str(exc)}) from exc
        raise GitProblem(exc.code, str(exc)) from exc
    except mlproject.MLProjectError as exc:
        raise MLProjectProblem(exc.code, str(exc)) from exc
    return ParsedProject(uri=url, version=version, commit_sha=sha, project=project)


@dataclass(frozen=True)
class RunRequest:
    title: str
    uri: str
    version: str
    entry_point: str
    parameters: dict[str, Any]
    gpu_type: str
    gpu_count: int
    machine_type: str | None
    spot: bool
    dryrun_override_param: str
    dryrun_override_value: Any
    notes: str = ""
    idempotency_key: str | None = None
    copied_from_id: uuid.UUID | None = None  # copyRun's source


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def check_dryrun_override(entry: mlproject.EntryPoint, effective: dict[str, str], param: str,
                          value: Any) -> tuple[mlproject.Parameter, str]:
    """The override parameter and its value as passed to the dryrun; ValidationError unless the
    estimate can scale by it (numeric, positive, and a positive full value)."""
    override = entry.parameter(param)
    if override is None or override.type not in ("int", "float"):
        raise ValidationError({"dryrunOverrideParam": "must name a numeric (int or float) parameter of the "
                                                      "entry point"})
    if not _is_number(value) or float(value) <= 0:
        raise ValidationError({"dryrunOverrideValue": "must be a positive number"})
    if not _is_number(effective.get(param)) or float(effective[param]) <= 0:
        raise ValidationError({"parameters." + param: "needs a positive value (the full run's value) to scale "
                                                      "the estimate"})
    try:
        return override, mlproject.normalize_parameter(override, value)
    except mlproject.MLProjectError as exc:
        raise ValidationError({"dryrunOverrideValue": str(exc)}) from exc


async def create_run(lifecycle: Lifecycle, actor: User, project: Project, req: RunRequest) -> Run:
    """Validate everything, store the run in `dryrun` and launch the dryrun job. With an
    idempotency key, a retry returns the first run and never submits a second dryrun."""
    try:
        return await _create_run(lifecycle, actor, project, req)
    except _LostRace:
        record = await IdempotencyRecord.get(user=actor, scope="createRun", key=req.idempotency_key)
        return await Run.get(id=record.result_id)
    except QuotaExceeded:
        # A concurrent retry with this key may have taken the last slot: its run is the answer.
        again = req.idempotency_key and await IdempotencyRecord.get_or_none(
            user=actor, scope="createRun", key=req.idempotency_key)
        if not again:
            raise
        return await Run.get(id=again.result_id)


def _check_request(req: RunRequest) -> tuple[str, MachineType]:
    """What can be checked without the repository: (the title, trimmed; the machine)."""
    errors: dict[str, str] = {}
    title = req.title.strip()
    if not (1 <= len(title) <= TITLE_MAX):
        errors["title"] = f"1-{TITLE_MAX} characters"
    if len(req.notes) > NOTES_MAX:
        errors["notes"] = f"at most {NOTES_MAX} characters"
    if req.idempotency_key is not None and not (1 <= len(req.idempotency_key) <= 200):
        errors["idempotencyKey"] = "1-200 characters"
    machine = None
    try:
        _, machine = resolve_machine(req.gpu_type, req.gpu_count, req.machine_type)
    except ValidationError as exc:
        errors |= exc.fields
    if errors or machine is None:
        raise ValidationError(errors)
    return title, machine


def _entry_and_parameters(parsed: ParsedProject, req: RunRequest) -> tuple[mlproject.EntryPoint, dict[str, str]]:
    """The entry point and its effective parameters (defaults filled in)."""
    try:
        entry = parsed.project.entry_point(req.entry_point)
    except mlproject.MLProjectError as exc:
        raise ValidationError({"entryPoint": str(exc)}) from exc
    try:
        return entry, mlproject.validate_parameters(entry, req.parameters)
    except mlproject.MLProjectError as exc:
        raise ValidationError({f"parameters.{k}": v for k, v in (exc.fields or {"": str(exc)}).items()}) from exc


class _LostRace(Exception):
    """A concurrent retry with the same idempotency key committed first."""


async def _create_run(lifecycle: Lifecycle, actor: User, project: Project, req: RunRequest) -> Run:
    if project.owner_id != actor.id:
        raise Forbidden("Only the project owner can create runs.")
    if req.idempotency_key:
        existing = await IdempotencyRecord.get_or_none(user=actor, scope="createRun", key=req.idempotency_key)
        if existing is not None:
            return await Run.get(id=existing.result_id)
    title, machine = _check_request(req)
    parsed = await parse(req.uri, req.version)
    entry, effective = _entry_and_parameters(parsed, req)
    override, override_value = check_dryrun_override(entry, effective, req.dryrun_override_param,
                                                     req.dryrun_override_value)

    async with in_transaction():
        await quotas.reserve_dryrun(actor.id)
        run = await Run.create(
            project=project, creator=actor, title=title, status=RunStatus.DRYRUN.value, uri=parsed.uri,
            version=req.version,
            commit_sha=parsed.commit_sha, entry_point=entry.name, parameters=effective, gpu_type=req.gpu_type,
            gpu_count=req.gpu_count, machine_type=machine.machine_type, spot=req.spot, image=parsed.project.image,
            dryrun_override_param=override.name, dryrun_override_value=override_value, notes=req.notes,
            copied_from_id=req.copied_from_id,
        )
        if req.idempotency_key:
            try:
                async with in_transaction():
                    await IdempotencyRecord.create(user=actor, scope="createRun", key=req.idempotency_key,
                                                   result_id=run.id)
            except IntegrityError:
                raise _LostRace() from None  # rolls back our run: the winner's is the answer
        await revisions.record("run", run.id, 1, run.notes, actor, "created")
        job = await lifecycle.create_job(run, "dryrun")
        run.dryrun_job_id = job.id
        await run.save(update_fields=["dryrun_job_id"])
    await lifecycle.launch(job.id)
    await lifecycle.run_status_changed(run, "")
    return run


def can_manage(actor: User, run: Run, project: Project) -> bool:
    return actor.is_admin or actor.id in (run.creator_id, project.owner_id)


async def cancel_run(lifecycle: Lifecycle, actor: User, run_id: uuid.UUID) -> Run:
    """Creator or project owner. Idempotent for a cancelled run; terminal runs cannot be cancelled."""
    async with in_transaction():
        run = await Run.select_for_update().get(id=run_id)
        project = await Project.get(id=run.project_id)
        if not can_manage(actor, run, project):
            raise Forbidden("Only the run's creator or the project owner can cancel it.")
        if run.status == RunStatus.CANCELLED:
            return run
        if run.status not in ACTIVE_RUN_STATUSES:
            raise InvalidState(f"A run in status {run.status!r} cannot be cancelled.")
        old_status = run.status
        run.status = RunStatus.CANCELLED.value
        await run.save(update_fields=["status", "updated_at"])
    job_id = run.dryrun_job_id if old_status == RunStatus.DRYRUN else run.funded_job_id
    job = await Job.get(id=job_id) if job_id else None
    never_started = job is None or job.started_at is None
    if old_status == RunStatus.AWAITING_FUNDING or (old_status == RunStatus.FUNDED and never_started):
        await settlement.refund_all(run.id, "run cancelled before its funded job started")
    await lifecycle.run_status_changed(run, old_status)
    if job is not None:
        await lifecycle.cancel_job(job, "run cancelled")
    return await Run.get(id=run.id)


async def cancel_job(lifecycle: Lifecycle, actor: User, job_id: uuid.UUID) -> Job:
    job = await Job.get(id=job_id)
    run = await Run.get(id=job.run_id)
    project = await Project.get(id=run.project_id)
    if not can_manage(actor, run, project):
        raise Forbidden("Only the run's creator or the project owner can cancel its jobs.")
    if job.kind == "funded" or run.status == RunStatus.DRYRUN:
        # Cancelling the active job cancels the run, so money and status stay consistent.
        if run.status in ACTIVE_RUN_STATUSES:
            await cancel_run(lifecycle, actor, run.id)
    else:
        await lifecycle.cancel_job(job)
    return await Job.get(id=job.id)


async def update_run(actor: User, run: Run, *, title: str | None, notes: str | None,
                     notes_base_version: int | None, edit_summary: str = "") -> Run:
    """Creator only. Notes are versioned: pass the base version for conflict detection."""
    if actor.id != run.creator_id:
        raise Forbidden("Only the run's creator can edit it.")
    extra: dict[str, Any] = {}
    if title is not None:
        if not (1 <= len(title.strip()) <= TITLE_MAX):
            raise ValidationError({"title": f"1-{TITLE_MAX} characters"})
        extra["title"] = title.strip()
    return await revisions.replace_body(
        run, "notes", "notes_version", "run", notes, actor, edit_summary, notes_base_version,
        max_length=NOTES_MAX, field="notes", extra_fields=extra,
    )
