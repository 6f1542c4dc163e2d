"""A request budget per client on `/graphql` (each HTTP request, each websocket connection) and
on artifact downloads (`/artifacts/…`: each one makes MLflow read, and may copy, a file), in
Redis (the sliding window of `ratelimit`), so it holds across every API replica.

The client is its API key (`Authorization: Bearer …`), else its browser session cookie, else
its IP address; keys and sessions are named in Redis only by a digest. Over budget, the answer
is HTTP 429 with `Retry-After` and a GraphQL error body: code `RATE_LIMITED`,
`retryAfterSeconds` and `recommendedAction`. The per-operation limits (`ratelimit.hit` in
resolvers) and the dryrun quotas come on top of this.
"""

from __future__ import annotations

import hashlib
from http.cookies import SimpleCookie

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api import ratelimit
from app.api.context import SESSION_COOKIE
from app.api.errors import RateLimited
from app.api.next_steps import GRAPHQL
from app.core.settings import Settings

WINDOW_SECONDS = 60


def budgeted(path: str) -> bool:
    return path.rstrip("/") == "/graphql" or path.startswith("/artifacts/")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:32]


def client_of(scope: Scope, settings: Settings) -> tuple[str, int]:
    """(subject, requests per minute) of the request's client."""
    headers = Headers(scope=scope)
    authorization = headers.get("authorization", "")
    if authorization.lower().startswith("bearer ") and authorization[7:].strip():
        return f"key:{_digest(authorization[7:].strip())}", settings.requests_per_minute
    cookie = SimpleCookie(headers.get("cookie", "")).get(SESSION_COOKIE)
    if cookie is not None and cookie.value:
        return f"session:{_digest(cookie.value)}", settings.requests_per_minute
    client = scope.get("client")
    return f"ip:{client[0] if client else 'unknown'}", settings.anonymous_requests_per_minute


class RequestBudget:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not budgeted(scope["path"]):
            await self.app(scope, receive, send)
            return
        subject, per_minute = client_of(scope, self.settings)
        try:
            await ratelimit.hit(scope["app"].state.services, "requests", subject, per_minute, WINDOW_SECONDS)
        except RateLimited as exc:
            if scope["type"] == "websocket" and "websocket.http.response" not in scope.get("extensions", {}):
                await send({"type": "websocket.close", "code": 4429})  # a server without denial responses
                return
            body: dict[str, object]
            if scope["path"].startswith("/artifacts/"):  # the download route's own error shape
                body = {"code": "RATE_LIMITED", "message": exc.message, "retryAfterSeconds": exc.retry_after}
            else:
                body = {"errors": [{"message": exc.message, "extensions": {
                    "code": "RATE_LIMITED", "retryAfterSeconds": exc.retry_after, "retryAfter": exc.retry_after,
                    "recommendedAction": GRAPHQL["RATE_LIMITED"]}}]}
            response = JSONResponse(body, status_code=429, headers={"Retry-After": str(exc.retry_after)})
            await response(scope, receive, send)  # a websocket handshake gets it as its HTTP answer
            return
        await self.app(scope, receive, send)
