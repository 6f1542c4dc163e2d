"""The ASGI application: /graphql (HTTP + websockets), health, readiness, metrics, the SPA."""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal, TypedDict

import orjson
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from tortoise import connections
from tortoise.functions import Count

from app.api.accounts.credentials import authenticate, build_context
from app.api.context import SESSION_COOKIE, Context, Services
from app.api.errors import Unauthenticated
from app.api.fanout import Broadcasts, FanoutHandler, TextWebSocket
from app.api.http_limits import MAX_SUBSCRIPTIONS_PER_CONNECTION, BodySizeLimit, LegacyWSHandler, LimitedJSON
from app.api.request_budget import RequestBudget
from app.core.db import close_db, init_db
from app.core.redis import connect as connect_redis
from app.core.settings import Settings, get_settings
from app.core.telemetry import configure_logging, setup_tracing, shutdown_tracing
from app.events import bus
from app.events.hub import Hub
from app.execution.factory import build_executor
from app.funding.webhooks import stripe_webhook
from app.guide.routes import guide_routes
from app.jobs.downloads import ROUTE_PREFIX as DOWNLOADS
from app.jobs.downloads import download_routes
from app.jobs.models import Job
from app.jobs.recorder import JobRecorder
from app.notifications import services as notifications
from app.notifications.funded import FundingNotifier
from app.notifications.outbox import OutboxSender
from app.notifications.web import unsubscribe_page
from app.runs import activity
from app.runs.lifecycle import Lifecycle
from app.runs.settling import settle_funded_job
from app.tracking.mlflow import MlflowTracker

log = logging.getLogger("mlpatron")
SPA_DIST = Path(__file__).resolve().parent.parent / "frontend" / "dist"
GRAPHQL_REQUESTS = Counter("mlpatron_graphql_requests_total", "GraphQL HTTP requests", ["method"])
HUB_TOPICS = Gauge("mlpatron_realtime_topics", "Redis topics this process's subscribers listen on")
JOBS = Gauge("mlpatron_jobs", "Jobs by status (platform-wide)", ["status"])
GC_YOUNG_THRESHOLD = 20_000


# How the API serves websockets (`mlpatron serve`, the benchmarks): wsproto, and no per-message
# compression. A deflate context costs each connection ~40 KiB even while idle, and compresses every
# fanned-out message once per subscriber; without it an idle subscription costs < 30 KiB.
class WebsocketOptions(TypedDict):
    ws: Literal["wsproto"]
    ws_per_message_deflate: bool


WEBSOCKETS: WebsocketOptions = {"ws": "wsproto", "ws_per_message_deflate": False}


class GraphQLApp(LimitedJSON, GraphQL[Context, None]):
    graphql_transport_ws_handler_class = FanoutHandler
    graphql_ws_handler_class = LegacyWSHandler
    websocket_adapter_class = TextWebSocket
    broadcasts: Broadcasts  # this app's shared subscription executions

    def encode_json(self, data: object) -> bytes:
        """orjson: a 50 KB dashboard page encodes several times faster than with `json.dumps`."""
        try:
            return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:  # an integer beyond 64 bits inside a JSON scalar
            return json.dumps(data, separators=(",", ":")).encode()

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket | None = None) -> Context:
        if isinstance(request, Request):
            GRAPHQL_REQUESTS.labels(request.method).inc()
        return await build_context(
            request, response if isinstance(response, Response) else None, request.headers.get("authorization"),
            request.cookies.get(SESSION_COOKIE), services=request.app.state.services,
        )

    async def on_ws_connect(self, context: Context) -> Any:
        """`connection_init` may carry `{"authorization": "Bearer mlp_sk_…"}`; otherwise the cookie counts."""
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        auth = params.get("authorization") or params.get("Authorization")
        if auth:
            try:
                context.user, context.api_key = await authenticate(str(auth), None)
                context.auth_error = None
            except Unauthenticated as exc:
                context.auth_error = exc
        return None


async def start_runtime(settings: Settings) -> Services:
    """Database, Redis, tracking, executor and lifecycle, wired together: shared by the server, CLI and tests."""
    await init_db(settings.database_url, settings.database_pool_size)
    redis = connect_redis(settings.redis_url)
    hub = Hub(settings.redis_url)
    hub.start()
    await hub.until_connected()
    bus.bind(redis, hub)
    tracker = MlflowTracker(settings.mlflow_tracking_uri) if settings.mlflow_tracking_uri else None
    recorder = JobRecorder()
    lifecycle = Lifecycle(build_executor(settings, recorder), recorder, tracker, hub)
    # A job's transition: its run's stream, the money (before the run's end is announced), the run.
    recorder.on_transition(activity.job_status_event)
    recorder.on_transition(settle_funded_job)
    recorder.on_transition(lifecycle.job_transition)
    # A run's status change: its streams, then notifications.
    lifecycle.on_run_status(activity.run_status_events)
    lifecycle.on_run_status(notifications.on_run_status)
    funding_notices = FundingNotifier()
    lifecycle.on_funding(funding_notices.funding_committed)
    if settings.executor == "local":
        lifecycle.start_cancel_listener()
    if settings.run_watcher:
        lifecycle.start_reconciler()
    # Every process sends mail: claims skip rows another sender holds.
    outbox = OutboxSender(hub)
    outbox.start()
    funding_notices.start()
    return Services(redis=redis, hub=hub, lifecycle=lifecycle, outbox=outbox, funding_notices=funding_notices,
                    tracker=tracker)


async def stop_runtime(services: Services) -> None:
    await services.funding_notices.close()
    await services.outbox.close()
    await services.lifecycle.close()
    await services.hub.close()
    bus.unbind()
    await services.redis.aclose()
    await close_db()


# Vite puts a content hash in every file name under assets/: a changed file gets a new name.
IMMUTABLE = "public, max-age=31536000, immutable"


class SpaFiles(StaticFiles):
    """The built SPA: its files, and index.html for any other path (client-side routes).

    Hashed assets are cached for a year; everything else (index.html names the current
    assets) is revalidated on every load."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            response = await super().get_response(path, scope)
        except HTTPException as exc:
            if exc.status_code != 404:
                raise
            return FileResponse(Path(str(self.directory)) / "index.html", headers={"Cache-Control": "no-cache"})
        response.headers["Cache-Control"] = IMMUTABLE if path.startswith("assets/") else "no-cache"
        return response


class GZipExceptDownloads(GZipMiddleware):
    """Artifact downloads pass untouched: compressing them would drop Content-Length and break ranges."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(DOWNLOADS):
            await self.app(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def spa_routes(dist: Path = SPA_DIST) -> list[BaseRoute]:
    """Mounted after the API routes, and only once `make frontend` has built the SPA."""
    return [Mount("/", SpaFiles(directory=dist), name="spa")] if (dist / "index.html").is_file() else []


async def health(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


# Checks the API can serve without, in degraded mode (see README, "When Redis is away").
DEGRADABLE = frozenset({"redis"})


async def ready(request: Request) -> Response:
    """200 when the database and Redis answer; otherwise 503 naming the `failing` checks.

    `?degraded=ok` (the Kubernetes readiness probe) tolerates the degradable checks: a pod
    without Redis still serves, so a Redis outage must not take every replica out of service.
    """
    checks: dict[str, str] = {}
    try:
        await connections.get("default").execute_query("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        await request.app.state.services.redis.ping()
        # Until the hub is back, this process still runs degraded (re-reads, fallback limits).
        checks["redis"] = "ok" if request.app.state.services.hub.is_connected else "error: event hub reconnecting"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    failing = [name for name, result in checks.items() if result != "ok"]
    if not failing:
        return JSONResponse({"status": "ok", "checks": checks})
    tolerated = DEGRADABLE if request.query_params.get("degraded") == "ok" else frozenset()
    serving = all(name in tolerated for name in failing)
    return JSONResponse({"status": "degraded" if serving else "unavailable", "checks": checks, "failing": failing},
                        status_code=200 if serving else 503)


async def metrics(request: Request) -> Response:
    HUB_TOPICS.set(request.app.state.services.hub.topics)
    counts = dict(await Job.filter(status__in=["pending", "running"]).group_by("status")
                  .annotate(n=Count("id")).values_list("status", "n"))
    for status in ("pending", "running"):
        JOBS.labels(status).set(counts.get(status, 0))
    return PlainTextResponse(generate_latest().decode(), media_type=CONTENT_TYPE_LATEST)


def create_app(settings: Settings | None = None) -> Starlette:
    from app.schema import schema

    settings = settings or get_settings()
    if os.environ.get("LOG_FORMAT"):
        configure_logging()  # uvicorn started without the CLI (`uvicorn app.main:create_app --factory`)
    tracing = setup_tracing()
    graphql = GraphQLApp(
        schema,
        graphql_ide="graphiql",
        subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL],
        max_subscriptions_per_connection=MAX_SUBSCRIPTIONS_PER_CONNECTION,
    )
    graphql.broadcasts = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services = await start_runtime(settings)
        app.state.services = services
        # Everything built at start-up (schema, models, services) lives as long as the process: out
        # of the collector's sight, a full collection no longer pauses every live stream to scan it.
        gc.freeze()
        # A page allocates ~10^4 objects that live until its response is sent and are freed with it
        # (no cycles): at the default threshold (700 allocations) the collector scans them about ten
        # times a request and finds nothing (a dashboard page: ~4 ms of ~35 ms of CPU).
        gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
        try:
            yield
        finally:
            await stop_runtime(services)
            shutdown_tracing()

    routes = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        Route("/graphql/", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        WebSocketRoute("/graphql/", graphql),
        Route("/health", health),
        Route("/ready", ready),
        Route("/metrics", metrics),
        Route("/unsubscribe", unsubscribe_page, methods=["GET", "POST"]),
        Route("/webhooks/stripe", stripe_webhook, methods=["POST"]),
        *guide_routes(schema.as_str(), settings),
        *download_routes(),
        *spa_routes(),
    ]
    # Assets and JSON answers compressed (websockets pass through untouched). Level 5: on a 50 KB
    # GraphQL page level 9 costs six times the CPU (1.2 ms) for the same size.
    middleware = [Middleware(RequestBudget, settings=settings), Middleware(BodySizeLimit),
                  Middleware(GZipExceptDownloads, minimum_size=1000, compresslevel=5)]
    if tracing:
        middleware.insert(0, Middleware(OpenTelemetryMiddleware, excluded_urls="health,ready,metrics"))
    return Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
