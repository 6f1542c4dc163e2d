from __future__ import annotations

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
