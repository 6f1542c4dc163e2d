"""GraphQL pieces shared by every versioned body: edit inputs, revision history, the generic patch."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, cast

import strawberry
from tortoise.models import Model

from app.accounts.models import User
from app.api.context import Info
from app.api.errors import Error, converts, typed_errors
from app.api.nodes import ModelNode
from app.revisions import services
from app.revisions.errors import EditNotApplicable, VersionConflict
from app.revisions.models import Revision

if TYPE_CHECKING:
    from app.api.accounts.types import UserType

M = TypeVar("M", bound=Model)


@strawberry.input
class TextEditInput:
    old_text: str = strawberry.field(description="Exact text to replace; must occur exactly once.")
    new_text: str


@strawberry.input(description="Search/replace edits on a versioned body, applied in order, all or nothing.")
class PatchTextInput:
    id: strawberry.ID
    base_version: int = strawberry.field(description="The version the edits were written against.")
    edits: list[TextEditInput]
    edit_summary: str = ""


@strawberry.type(name="Revision")
class RevisionType:
    version: int
    body: str
    edit_summary: str
    created_at: datetime
    editor_id: strawberry.Private[str | None]

    @classmethod
    def from_model(cls, row: Revision) -> RevisionType:
        return cls(version=row.version, body=row.body, edit_summary=row.edit_summary, created_at=row.created_at,
                   editor_id=str(row.editor_id) if row.editor_id else None)

    @strawberry.field(description="Null when the editor's account no longer exists.")
    async def editor(self, info: Info) -> Annotated[UserType, strawberry.lazy("app.api.accounts.types")] | None:
        user = await info.context.loaders.get(User, self.editor_id) if self.editor_id else None
        return ModelNode.of(user) if user else None


@dataclass(frozen=True)
class VersionedBody:
    """Where a versioned Markdown body lives, so one code path serves every `patch…` mutation."""

    model: type[Model]
    type_name: str  # GraphQL type of the global id, e.g. "Project"
    entity_type: str  # Revision.entity_type, e.g. "project"
    body_field: str = "body"
    version_field: str = "body_version"
    max_length: int = services.BODY_MAX
    required: bool = False


@typed_errors
async def patch_body(
    info: Info, input: PatchTextInput, spec: VersionedBody, *,
    authorize: Callable[[User, M], Awaitable[None] | None], success: Callable[[M], Any],
) -> Any:
    """Load the entity, let `authorize` raise (Forbidden, or a DomainError for a typed result), patch.

    Returns `success(updated)` or the typed error; access errors propagate as GraphQL errors.
    """
    user = info.context.require_user()
    entity = cast(M, await info.context.loaders.node(spec.model, input.id, spec.type_name))
    checked = authorize(user, entity)
    if checked is not None:
        await checked
    updated = await services.apply_patch(
        entity, spec.body_field, spec.version_field, spec.entity_type, input.base_version, input.edits,
        user, input.edit_summary, max_length=spec.max_length, required=spec.required,
    )
    return success(updated)


# ---- typed errors of the payloads ------------------------------------------------------------


@strawberry.type(name="VersionConflict")
class VersionConflictError(Error):
    current_version: int
    current_body: str


@strawberry.type(name="EditNotApplicable")
class EditNotApplicableError(Error):
    edit_index: int = strawberry.field(description="0-based index of the failing edit in `edits`.")
    match_count: int = strawberry.field(description="0 (not found) or 2 (several matches: add context).")


@converts(VersionConflict)
def _conflict(err: VersionConflict) -> VersionConflictError:
    return VersionConflictError(
        message=err.message, code=err.code, current_version=err.current_version, current_body=err.current_body
    )


@converts(EditNotApplicable)
def _not_applicable(err: EditNotApplicable) -> EditNotApplicableError:
    return EditNotApplicableError(
        message=err.message, code=err.code, edit_index=err.edit_index, match_count=err.match_count
    )
