"""Traces and structured logs.

Tracing is on when `OTEL_EXPORTER_OTLP_ENDPOINT` is set: spans for HTTP and websocket requests
(ASGI), GraphQL operations (strawberry's extension, added by `app/api/extensions.py`), SQL
(asyncpg) and Redis, exported over OTLP/HTTP (the standard `OTEL_*` variables apply, e.g.
`OTEL_SERVICE_NAME`). Off, nothing is instrumented, so the hot paths pay nothing.

`LOG_FORMAT=json` writes one JSON object per log line carrying `trace_id` and `span_id` of the
span it was written in: the `traceId` a user reports from a GraphQL error finds its lines.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

_provider: Any = None


def tracing_enabled() -> bool:
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def setup_tracing(service_name: str = "mlpatron") -> bool:
    """Install the process's tracer provider and instrument asyncpg and Redis (once)."""
    global _provider
    if _provider is not None or not tracing_enabled():
        return _provider is not None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)})
    _provider = TracerProvider(resource=resource)
    _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(_provider)
    AsyncPGInstrumentor().instrument()  # type: ignore[no-untyped-call]  # the instrumentor is untyped
    RedisInstrumentor().instrument()
    return True


def shutdown_tracing() -> None:
    """Flush what is buffered (end of the process)."""
    if _provider is not None:
        _provider.shutdown()


def current_trace_id() -> str:
    """The current trace's id (32 hex digits); a fresh random id when nothing is traced."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else uuid.uuid4().hex


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            entry["trace_id"] = format(context.trace_id, "032x")
            entry["span_id"] = format(context.span_id, "016x")
        for key in ("trace_id", "code"):  # set with `extra=` by callers that know them
            if key in record.__dict__ and key not in entry:
                entry[key] = record.__dict__[key]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging() -> None:
    """Root logging for a platform process: `LOG_FORMAT` text (default) or json, `LOG_LEVEL` (INFO)."""
    root = logging.getLogger()
    if any(getattr(h, "_mlpatron", False) for h in root.handlers):
        return
    handler = logging.StreamHandler()
    handler._mlpatron = True  # type: ignore[attr-defined]
    if os.environ.get("LOG_FORMAT", "text").lower() == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
