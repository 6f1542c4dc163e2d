from __future__ import annotations

import strawberry

from app.api.errors import Error, converts
from app.core.errors import DomainError, ErrorCode


class VersionConflict(DomainError):
    code = ErrorCode.VERSION_CONFLICT

    def __init__(self, current_version: int, current_body: str) -> None:
        super().__init__(f"The body changed since your base version; current version is {current_version}.")
        self.current_version = current_version
        self.current_body = current_body


class EditNotApplicable(DomainError):
    """A search/replace edit whose `oldText` does not occur exactly once."""

    code = ErrorCode.EDIT_NOT_APPLICABLE

    def __init__(self, edit_index: int, match_count: int) -> None:
        found = "was not found" if match_count == 0 else "occurs more than once; include more context"
        super().__init__(f"Edit {edit_index}: oldText {found}. No edit was applied.")
        self.edit_index = edit_index
        self.match_count = match_count


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
