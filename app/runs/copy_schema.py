"""`copyRun`: re-run an existing run with optional overrides (e.g. after a failed dryrun)."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from app.api.context import Info
from app.api.errors import RateLimitedError, ValidationFailed, typed_errors
from app.core.errors import ValidationError
from app.runs.copy import CopyOverrides, Resources, copy_run
from app.runs.models import Run
from app.runs.schema import GitErrorType, MLprojectErrorType, ResourcesInput, RunSuccess
from app.runs.types import RunType


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
