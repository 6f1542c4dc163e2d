"""Who is calling a request: its `Authorization: Bearer` API key or its session cookie, checked by the
accounts services, and the GraphQL context built around that caller."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from app.accounts import services as accounts
from app.accounts.models import ApiKey, User
from app.api.context import Context, Services
from app.api.errors import Unauthenticated


async def authenticate(authorization: str | None, session_token: str | None) -> tuple[User | None, ApiKey | None]:
    """Resolve the caller; a presented but wrong API key raises (expired sessions are anonymous)."""
    if authorization:
        scheme, _, secret = authorization.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthenticated("Authorization header must be 'Bearer mlp_sk_…'.")
        found = await accounts.authenticate_api_key(secret.strip())
        if found is None:
            raise Unauthenticated("Invalid or revoked API key.")
        return found
    if session_token:
        user = await accounts.user_for_session(session_token)
        if user is not None:
            return user, None
    return None, None


async def build_context(
    request: Request | WebSocket | None,
    response: Response | None,
    authorization: str | None,
    session_token: str | None,
    services: Services | None = None,
) -> Context:
    ctx = Context(request=request, response=response, services=services)
    try:
        ctx.user, ctx.api_key = await authenticate(authorization, session_token)
    except Unauthenticated as exc:
        ctx.auth_error = exc
    return ctx
