"""Error conventions.

Expected failures of a mutation are *typed results* (union members implementing `Error`);
the service layer raises `DomainError` subclasses and a resolver decorated with `typed_errors`
returns them as those types (each registered with `converts`). Failures of access or addressing
(unauthenticated, forbidden, not found, rate limited, bad arguments) are GraphQL errors carrying
`extensions.code` and `traceId`.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import strawberry
from graphql import GraphQLError

from app.api.next_steps import TYPED
from app.core import errors
from app.core.errors import DomainError, ErrorCode, InvalidCredentials, InvalidState, QuotaExceeded, ValidationError

strawberry.enum(ErrorCode)


# ---- GraphQL errors (access and addressing) -----------------------------------------------


class ApiError(GraphQLError):
    """A GraphQL error that is safe to show: never masked, always carries a code."""

    def __init__(self, message: str, code: str, **extensions: Any) -> None:
        super().__init__(message, extensions={"code": code, **extensions})


class Unauthenticated(ApiError):
    def __init__(self, message: str = "Authentication required.") -> None:
        super().__init__(message, "UNAUTHENTICATED")


# The GraphQL faces of the services' access errors: `except core.Forbidden` catches both.
class Forbidden(ApiError, errors.Forbidden):
    def __init__(self, message: str = "You are not allowed to do this.") -> None:
        super().__init__(message, "FORBIDDEN")


class NotFound(ApiError, errors.NotFound):
    def __init__(self, what: str = "Object") -> None:
        super().__init__(f"{what} not found.", "NOT_FOUND")


class BadInput(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(message, "BAD_USER_INPUT")


class RateLimited(ApiError):
    """`retryAfterSeconds` is when the call would succeed; `retryAfter` is the same figure under
    the name earlier clients read."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Rate limit exceeded; retry in {retry_after} s.", "RATE_LIMITED",
                         retryAfter=retry_after, retryAfterSeconds=retry_after)
        self.retry_after = retry_after


class ServiceUnavailable(ApiError):
    """A dependency the operation cannot do without is down (e.g. Redis for login limits)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Temporarily unavailable; retry in {retry_after} s.", "SERVICE_UNAVAILABLE",
                         retryAfter=retry_after, retryAfterSeconds=retry_after)
        self.retry_after = retry_after


# ---- typed error results ------------------------------------------------------------------


@strawberry.interface
class Error:
    message: str
    code: ErrorCode

    @strawberry.field(description="What to do next, in one sentence (the same for every error of this code).")
    def recommended_action(self) -> str:
        return TYPED[ErrorCode(self.code)]

    @strawberry.field(description="Seconds after which the same request can succeed; null when waiting does not "
                                  "help.")
    def retry_after_seconds(self) -> int | None:
        return None


@strawberry.type
class FieldError:
    field: str
    message: str


@strawberry.type
class ValidationFailed(Error):
    fields: list[FieldError]


@strawberry.type
class InvalidCredentialsError(Error):
    pass


@strawberry.type
class InvalidStateError(Error):
    pass


_E = TypeVar("_E", bound=DomainError)
_P = ParamSpec("_P")
_R = TypeVar("_R")
_converters: dict[type[DomainError], Callable[[Any], Any]] = {}


def converts(error_cls: type[_E]) -> Callable[[Callable[[_E], Any]], Callable[[_E], Any]]:
    """Register how a domain error becomes its GraphQL error type."""

    def register(fn: Callable[[_E], Any]) -> Callable[[_E], Any]:
        _converters[error_cls] = fn
        return fn

    return register


def error_payload(err: DomainError) -> Any:
    for cls in type(err).__mro__:
        if cls in _converters:
            return _converters[cls](err)
    raise err


def typed_errors(resolver: Callable[_P, Awaitable[_R]]) -> Callable[_P, Awaitable[_R]]:
    """Put under `@strawberry.mutation`: a `DomainError` the resolver raises becomes the typed
    error of its payload union; access errors (`ApiError`) still propagate as GraphQL errors."""

    @functools.wraps(resolver)
    async def resolve(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return await resolver(*args, **kwargs)
        except DomainError as err:
            return error_payload(err)  # the payload union's error member

    return resolve


@converts(ValidationError)
def _validation(err: ValidationError) -> ValidationFailed:
    return ValidationFailed(
        message=err.message,
        code=err.code,
        fields=[FieldError(field=k, message=v) for k, v in err.fields.items()],
    )


@converts(InvalidCredentials)
def _credentials(err: InvalidCredentials) -> InvalidCredentialsError:
    return InvalidCredentialsError(message=err.message, code=err.code)


@converts(InvalidState)
def _state(err: InvalidState) -> InvalidStateError:
    return InvalidStateError(message=err.message, code=err.code)


@strawberry.type(name="RateLimited", description="A quota is used up: the same call succeeds after "
                                                  "`retryAfterSeconds`.")
class RateLimitedError(Error):
    quota: str = strawberry.field(description="DRYRUNS_PER_DAY, CONCURRENT_DRYRUNS, …")
    limit: int
    retry_after_seconds: int


@converts(QuotaExceeded)
def _quota(err: QuotaExceeded) -> RateLimitedError:
    return RateLimitedError(message=err.message, code=err.code, quota=err.quota, limit=err.limit,
                            retry_after_seconds=err.retry_after_seconds)
