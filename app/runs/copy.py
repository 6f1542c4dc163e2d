"""copyRun: a new run from an existing one, with optional overrides, through createRun's path
(same checks, same idempotency keys, its own dryrun)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.accounts.models import User
from app.core.errors import Forbidden
from app.projects.models import Project
from app.runs import services
from app.runs.lifecycle import Lifecycle
from app.runs.models import Run


@dataclass(frozen=True)
class Resources:
    gpu_type: str
    gpu_count: int
    machine_type: str | None
    spot: bool


@dataclass(frozen=True)
class CopyOverrides:
    """What changes from the source; None keeps the source's value."""

    title: str | None = None
    version: str | None = None
    entry_point: str | None = None
    parameters: dict[str, Any] | None = None
    resources: Resources | None = None
    dryrun_override_param: str | None = None
    dryrun_override_value: Any = None
    notes: str | None = None
    idempotency_key: str | None = None


def copy_title(title: str) -> str:
    suffix = " (copy)"
    return title[: services.TITLE_MAX - len(suffix)] + suffix


def copy_parameters(source: Run, entry_point: str, given: dict[str, Any] | None) -> dict[str, Any]:
    """The source's effective parameters with the given ones on top; none of them when the entry
    point changes (another entry point declares other parameters)."""
    if entry_point != source.entry_point:
        return dict(given or {})
    return {**source.parameters, **(given or {})}


async def copy_run(lifecycle: Lifecycle, actor: User, source: Run, o: CopyOverrides) -> Run:
    """Project owner only. The version is resolved again (a branch may have moved since: that is
    how a fixed dryrun is retried); pass the source's `commitSha` as `version` to pin it."""
    project = await Project.get(id=source.project_id)
    if project.owner_id != actor.id:
        raise Forbidden("Only the project owner can copy runs into the project.")
    entry_point = o.entry_point if o.entry_point is not None else source.entry_point
    res = o.resources or Resources(source.gpu_type, source.gpu_count, source.machine_type, source.spot)
    request = services.RunRequest(
        title=o.title if o.title is not None else copy_title(source.title),
        uri=source.uri,
        version=o.version if o.version is not None else source.version,
        entry_point=entry_point,
        parameters=copy_parameters(source, entry_point, o.parameters),
        gpu_type=res.gpu_type, gpu_count=res.gpu_count, machine_type=res.machine_type, spot=res.spot,
        dryrun_override_param=o.dryrun_override_param or source.dryrun_override_param,
        dryrun_override_value=(o.dryrun_override_value if o.dryrun_override_value is not None
                               else source.dryrun_override_value),
        notes=o.notes if o.notes is not None else "",
        idempotency_key=o.idempotency_key,
        copied_from_id=source.id,
    )
    return await services.create_run(lifecycle, actor, project, request)
