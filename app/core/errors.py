"""Domain errors: what services raise when a request cannot be carried out.

The GraphQL layer (`app/api/errors.py`) turns each into a typed result implementing `Error`;
services never know about that.
"""

from __future__ import annotations

import enum


class ErrorCode(enum.Enum):
    VALIDATION_FAILED = "VALIDATION_FAILED"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    RUN_NOT_FUNDABLE = "RUN_NOT_FUNDABLE"
    INVALID_STATE = "INVALID_STATE"
    VERSION_CONFLICT = "VERSION_CONFLICT"
    EDIT_NOT_APPLICABLE = "EDIT_NOT_APPLICABLE"
    MLPROJECT_ERROR = "MLPROJECT_ERROR"
    GIT_ERROR = "GIT_ERROR"
    PAYMENTS_NOT_CONFIGURED = "PAYMENTS_NOT_CONFIGURED"
    RATE_LIMITED = "RATE_LIMITED"


class DomainError(Exception):
    code: ErrorCode = ErrorCode.VALIDATION_FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AccessError(Exception):
    """Not a result the caller can act on in the payload: no access, or nothing there. The API
    reports it as a GraphQL error with `extensions.code` (see `app/api/extensions.py`)."""

    code = "FORBIDDEN"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Forbidden(AccessError):
    code = "FORBIDDEN"

    def __init__(self, message: str = "You are not allowed to do this.") -> None:
        super().__init__(message)


class NotFound(AccessError):
    code = "NOT_FOUND"

    def __init__(self, what: str = "Object") -> None:
        super().__init__(f"{what} not found.")


class ValidationError(DomainError):
    code = ErrorCode.VALIDATION_FAILED

    def __init__(self, fields: dict[str, str], message: str | None = None) -> None:
        super().__init__(message or "; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


class InvalidCredentials(DomainError):
    code = ErrorCode.INVALID_CREDENTIALS


class InvalidState(DomainError):
    code = ErrorCode.INVALID_STATE


class QuotaExceeded(DomainError):
    """A per-user quota is used up; the same call succeeds after `retry_after_seconds`."""

    code = ErrorCode.RATE_LIMITED

    def __init__(self, quota: str, limit: int, retry_after_seconds: int, message: str) -> None:
        super().__init__(message)
        self.quota, self.limit, self.retry_after_seconds = quota, limit, retry_after_seconds
