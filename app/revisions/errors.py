from __future__ import annotations

import strawberry

from app.api.errors import DomainError, Error, ErrorCode, converts


class VersionConflict(DomainError):
    code = ErrorCode.VERSION_CONFLICT

    def __init__(self, current_version: int, current_body: str) -> None:
        super().__init__(f"The body changed since your base version; current version is {current_version}.")
        self.current_version = current_version
        self.current_body = current_body


@strawberry.type(name="VersionConflict")
class VersionConflictError(Error):
    current_version: int
    current_body: str


@converts(VersionConflict)
def _conflict(err: VersionConflict) -> VersionConflictError:
    return VersionConflictError(
        message=err.message, code=err.code, current_version=err.current_version, current_body=err.current_body
    )
