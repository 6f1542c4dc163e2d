"""Schema extensions: cost limits and error hygiene (masked internals, a trace id on every error)."""

from __future__ import annotations

import logging

from graphql import GraphQLError
from strawberry.extensions import AddValidationRules, MaskErrors, MaxTokensLimiter, ValidationCache
from strawberry.extensions.max_aliases import create_validator as aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule
from strawberry.extensions.tracing import OpenTelemetryExtension
from strawberry.relay.types import GlobalIDValueError

from app.core.telemetry import tracing_enabled

log = logging.getLogger("mlpatron.graphql")

MAX_DEPTH = 12
MAX_TOKENS = 4000
MAX_ALIASES = 30
MAX_MESSAGE = 300  # characters of an error message; names from the request are echoed in them
# Built once: QueryDepthLimiter / MaxAliasesLimiter make a new rule class per instance (one per
# request), which would make every request a ValidationCache miss.
LIMIT_RULES = [depth_rule(MAX_DEPTH, None), aliases_rule(MAX_ALIASES)]


def _is_safe(error: GraphQLError) -> bool:
    original = error.original_error
    # No original error: a parse/validation error produced by graphql-core itself (safe to show).
    return original is None or isinstance(original, GraphQLError)


class TracedErrors(MaskErrors):
    """Masks unexpected exceptions, maps bad global ids to BAD_USER_INPUT, stamps `traceId`."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=lambda e: not _is_safe(e), error_message="Internal server error.")

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        trace_id = getattr(self.execution_context.context, "trace_id", None)
        out: list[GraphQLError] = []
        for error in errors:
            original = error.original_error
            if isinstance(original, GlobalIDValueError):
                error = GraphQLError(
                    "Malformed id.", nodes=error.nodes, path=error.path, extensions={"code": "BAD_USER_INPUT"}
                )
            elif not _is_safe(error):
                log.error("unhandled error [trace %s]", trace_id, exc_info=original)
                error = self.anonymise_error(error)
                error.extensions = {"code": "INTERNAL_SERVER_ERROR"}
            elif original is None and not error.extensions:
                error.extensions = {"code": "GRAPHQL_VALIDATION_FAILED"}
            if len(error.message) > MAX_MESSAGE:  # e.g. an unknown 1 MB field name, echoed by graphql-core
                error.message = error.message[:MAX_MESSAGE] + "…"
            error.extensions = {**(error.extensions or {}), "traceId": trace_id}
            log.info("graphql error %s: %s", error.extensions.get("code"), error.message[:200],
                     extra={"trace_id": trace_id, "code": error.extensions.get("code")})
            out.append(error)
        return out


def schema_extensions() -> list:
    # Agents and the SPA send the same few documents over and over: validate each once. (No
    # ParserCache: it raises syntax errors from inside its hook, past the error masking.)
    tracing = [OpenTelemetryExtension] if tracing_enabled() else []
    return [
        *tracing,
        TracedErrors,
        lambda: ValidationCache(maxsize=512),
        lambda: AddValidationRules(LIMIT_RULES),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
    ]
