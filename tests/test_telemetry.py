"""Tracing and structured logs: an API process exports OTLP/HTTP to a collector the test runs; one
request is one trace through HTTP, GraphQL, SQL and Redis, and the `traceId` a client sees in an
error is that trace's id and finds the process's JSON log lines."""

from __future__ import annotations

import asyncio
import gzip
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
import uvicorn
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.embedded.ports import free_port
from tests.api_process import ApiProcess, replica_env
from tests.helpers import eventually

T = TypeVar("T")


def current(read: Callable[[], T]) -> Callable[[], Awaitable[T]]:
    """A probe for `eventually` over in-memory state."""

    async def probe() -> T:
        return read()

    return probe


class Collector:
    """The receiving end of OTLP/HTTP: every span exported, flattened."""

    def __init__(self) -> None:
        self.spans: list[dict] = []

    async def traces(self, request: Request) -> Response:
        body = await request.body()
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        export = ExportTraceServiceRequest.FromString(body)
        for resource in export.resource_spans:
            service = {a.key: a.value.string_value for a in resource.resource.attributes}.get("service.name")
            for scope in resource.scope_spans:
                for span in scope.spans:
                    attributes = {a.key: a.value.string_value or a.value.int_value for a in span.attributes}
                    self.spans.append({"trace": span.trace_id.hex(), "name": span.name, "service": service,
                                       "attributes": attributes})
        return Response(status_code=200)

    def trace(self, trace_id: str) -> list[dict]:
        return [s for s in self.spans if s["trace"] == trace_id]


@pytest.fixture
async def collector() -> AsyncIterator[tuple[Collector, str]]:
    sink = Collector()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/v1/traces", sink.traces, methods=["POST"])]),
                                           host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    await eventually(current(lambda: server.started), bool, within=10, every=0.02)
    yield sink, f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


def _systems(spans: list[dict]) -> set:
    return {s["attributes"].get("db.system") or s["attributes"].get("db.system.name") for s in spans}


async def test_one_request_is_one_trace_and_its_trace_id_finds_the_logs(
    settings, work_dir: Path, collector: tuple[Collector, str],
) -> None:
    sink, endpoint = collector
    log_path = work_dir / "api-otel.log"
    env = {**replica_env(settings), "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_SERVICE_NAME": "mlpatron-test",
           "OTEL_BSP_SCHEDULE_DELAY": "50", "LOG_FORMAT": "json"}
    api = ApiProcess(env, log_path)
    try:
        await asyncio.to_thread(api.wait_ready)
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
            failed = (await http.post("/graphql", json={
                "query": 'query Browse { projects(first: 1) { edges { node { id } } } node(id: "bogus") { id } }',
            })).json()
            handle = f"otel{uuid.uuid4().hex[:8]}"
            signed_up = (await http.post("/graphql", json={"query": """mutation Join($i: SignUpInput!) {
              signUp(input: $i) { __typename } }""", "variables": {"i": {
                "handle": handle, "email": f"{handle}@example.org", "password": "correct horse battery"}}})).json()
        assert signed_up["data"]["signUp"]["__typename"] != "ValidationFailed", signed_up
        [error] = failed["errors"]
        trace_id = error["extensions"]["traceId"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT" and len(trace_id) == 32

        # The error's trace holds the HTTP request, the GraphQL operation and its SQL.
        spans = await eventually(current(lambda: sink.trace(trace_id)),
                                 lambda spans: "postgresql" in _systems(spans)
                                 and any(s["name"].startswith("GraphQL Query: Browse") for s in spans)
                                 and any(s["name"].startswith("POST /graphql") for s in spans), within=20)
        assert {s["service"] for s in spans} == {"mlpatron-test"}

        # The sign-up's own trace reaches Redis (its rate limit) and PostgreSQL.
        [join] = await eventually(current(lambda: [s for s in sink.spans if s["name"] == "GraphQL Query: Join"]),
                                  lambda found: len(found) == 1, within=20)
        joined = await eventually(current(lambda: sink.trace(join["trace"])),
                                  lambda spans: {"redis", "postgresql"} <= _systems(spans), within=20)
        assert join["trace"] != trace_id and joined

        # JSON logs: the line about the error carries the same trace id.
        lines = await eventually(
            current(lambda: [json.loads(line) for line in log_path.read_text().splitlines()
                                      if line.startswith("{")]),
            lambda entries: any(e.get("trace_id") == trace_id for e in entries), within=10)
        [logged] = [e for e in lines if e.get("trace_id") == trace_id and "graphql error" in e["message"]]
        assert logged["level"] == "INFO" and logged["code"] == "BAD_USER_INPUT" and logged["span_id"]
        # The caller's mistake is that one line: no ERROR record, no traceback (strawberry's own logger).
        assert not [e for e in lines if e["level"] == "ERROR" or e["logger"].startswith("strawberry")], lines
    finally:
        await asyncio.to_thread(api.stop)
