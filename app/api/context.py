"""The GraphQL context: who is calling, per-request loaders, trace id, the process's services.

Who is calling is found by `app.api.accounts.credentials`; this module names the accounts, runs and
notifications classes in annotations only, so the shared plumbing imports no domain."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.types import Info as _Info

from app.api.errors import Forbidden, Unauthenticated
from app.api.loaders import Loaders
from app.core.telemetry import current_trace_id
from app.events.hub import Hub
from app.events.streams import Position
from app.tracking.mlflow import MlflowTracker

if TYPE_CHECKING:  # the plumbing names domain classes in annotations only: it imports no domain
    from collections.abc import Awaitable, Callable

    from app.accounts.models import ApiKey, User
    from app.api.fanout import Item
    from app.notifications.funded import FundingNotifier
    from app.notifications.outbox import OutboxSender
    from app.runs.lifecycle import Lifecycle

SESSION_COOKIE = "mlp_session"


@dataclass
class Services:
    """The process's long-lived components, built once by `app.main.start_runtime` and handed to
    each request's context (resolvers read `info.context.services`)."""

    redis: Redis
    hub: Hub
    lifecycle: Lifecycle
    outbox: OutboxSender
    funding_notices: FundingNotifier
    tracker: MlflowTracker | None = None


@dataclass
class Context:
    request: Request | WebSocket | None
    response: Response | None
    user: User | None = None
    api_key: ApiKey | None = None
    trace_id: str = field(default_factory=current_trace_id)
    loaders: Loaders = field(default_factory=Loaders)
    connection_params: dict[str, Any] | None = None
    # A credential was presented but is wrong: anything needing a user reports this instead.
    auth_error: Unauthenticated | None = None
    # The process's services (tracking, hub, …), handed in by the ASGI app that serves the request.
    services: Services | None = None
    # A subscription execution's place in its stream (see app.api.fanout).
    position: Position = field(default_factory=Position)
    # Set by the fan-out for its executions: where a resolver may send events it serialised itself
    # (`app.api.fanout.direct_events`); None elsewhere (every event through strawberry).
    direct: Callable[[Item], Awaitable[None]] | None = None

    @property
    def is_human(self) -> bool:
        return self.user is not None and self.api_key is None

    def require_user(self) -> User:
        if self.auth_error is not None:
            raise self.auth_error
        if self.user is None:
            raise Unauthenticated()
        return self.user

    def require_human(self) -> User:
        """Deposits and API key creation: a browser session only, never an agent's key."""
        user = self.require_user()
        if self.api_key is not None:
            raise Forbidden("This operation is for humans in the web UI; API keys cannot perform it.")
        return user

    def require_services(self) -> Services:
        if self.services is None:
            raise RuntimeError("no services in this context")
        return self.services

    @property
    def hub(self) -> Hub:
        return self.require_services().hub

    @property
    def lifecycle(self) -> Lifecycle:
        return self.require_services().lifecycle

    def require_admin(self) -> User:
        user = self.require_user()
        if not user.is_admin:
            raise Forbidden("Administrators only.")
        return user


Info = _Info[Context, None]
