"""Schema extensions: cost limits and error hygiene (masked internals, a trace id on every error)."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator

import strawberry
from graphql import ASTValidationRule, DocumentNode, GraphQLError
from strawberry.extensions import AddValidationRules, MaskErrors, MaxTokensLimiter, SchemaExtension, ValidationCache
from strawberry.extensions.max_aliases import create_validator as aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule
from strawberry.extensions.tracing import OpenTelemetryExtension
from strawberry.relay.types import GlobalIDValueError
from strawberry.types import ExecutionContext

from app.api.input_policy import long_number_literals
from app.api.next_steps import recommended_action
from app.api.node_cache import NodeCache
from app.core.errors import AccessError
from app.core.telemetry import tracing_enabled

log = logging.getLogger("mlpatron.graphql")

MAX_DEPTH = 12
MAX_TOKENS = 4000
MAX_ALIASES = 30
MAX_MESSAGE = 300  # characters of an error message; names from the request are echoed in them
# Built once: QueryDepthLimiter / MaxAliasesLimiter make a new rule class per instance (one per
# request), which would make every request a ValidationCache miss.
LIMIT_RULES: list[type[ASTValidationRule]] = [depth_rule(MAX_DEPTH, None), aliases_rule(MAX_ALIASES)]


def _is_safe(error: GraphQLError) -> bool:
    original = error.original_error
    # No original error: a parse/validation error produced by graphql-core itself (safe to show).
    return original is None or isinstance(original, GraphQLError | AccessError)


class PlatformSchema(strawberry.Schema):
    """strawberry logs every error of a result at ERROR with its traceback. The caller's mistakes (a
    parse or validation error, a service's Forbidden / NotFound, a malformed id) are logged once, at
    INFO, by TracedErrors; only unexpected failures keep strawberry's traceback."""

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        unexpected = [e for e in errors if not (_is_safe(e) or isinstance(e.original_error, GlobalIDValueError))]
        super().process_errors(unexpected, execution_context)


class TracedErrors(MaskErrors):
    """Masks unexpected exceptions, maps bad global ids to BAD_USER_INPUT, stamps `traceId`."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=lambda e: not _is_safe(e), error_message="Internal server error.")

    def _process_result(self, result: object) -> None:
        # strawberry's check is an isinstance() against a runtime Protocol, the slowest step of a
        # subscription event with no errors (7 % of an API process streaming 10,000 log lines/s).
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]  # has errors, so a result

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        trace_id = getattr(self.execution_context.context, "trace_id", None)
        out: list[GraphQLError] = []
        for error in errors:
            original = error.original_error
            if isinstance(original, GlobalIDValueError):
                error = GraphQLError(
                    "Malformed id.", nodes=error.nodes, path=error.path, extensions={"code": "BAD_USER_INPUT"}
                )
            elif isinstance(original, AccessError) and not isinstance(original, GraphQLError):
                error = GraphQLError(original.message, nodes=error.nodes, path=error.path,
                                     extensions={"code": original.code})  # a service's Forbidden, NotFound
            elif not _is_safe(error):
                # Its traceback is strawberry's record (PlatformSchema); this line ties it to the trace.
                log.error("unhandled error [trace %s]: %s", trace_id, type(original).__name__)
                error = self.anonymise_error(error)
                error.extensions = {"code": "INTERNAL_SERVER_ERROR"}
            elif original is None and not error.extensions:
                error.extensions = {"code": "GRAPHQL_VALIDATION_FAILED"}
            if len(error.message) > MAX_MESSAGE:  # e.g. an unknown 1 MB field name, echoed by graphql-core
                error.message = error.message[:MAX_MESSAGE] + "…"
            error.extensions = {**(error.extensions or {}), "traceId": trace_id}
            if (action := recommended_action(error.extensions.get("code"))) is not None:
                error.extensions["recommendedAction"] = action
            log.info("graphql error %s: %s", error.extensions.get("code"), error.message[:200],
                     extra={"trace_id": trace_id, "code": error.extensions.get("code")})
            out.append(error)
        return out


PARSED_MAX = 512
_parsed: OrderedDict[str, DocumentNode] = OrderedDict()


class ParsedDocuments(SchemaExtension):
    """Parse each document once: the last PARSED_MAX that parsed, least recently used dropped.

    Unlike strawberry's ParserCache, a document that fails to parse is not cached and is parsed
    by strawberry itself, so its syntax error is reported like any other."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        query = context.query
        document = _parsed.get(query) if query else None
        if query and document is not None:
            _parsed.move_to_end(query)
            context.graphql_document = document
        yield
        if document is None and context.query and context.graphql_document is not None:
            _parsed[context.query] = context.graphql_document
            if len(_parsed) > PARSED_MAX:
                _parsed.popitem(last=False)


_long_numbers: NodeCache[DocumentNode, list[GraphQLError]] = NodeCache(PARSED_MAX)


class CheckedValidationCache(ValidationCache):
    """Validation, cached per document, after refusing number literals too long to convert (also
    checked once per document: a parsed document is kept)."""

    def on_validate(self) -> Iterator[None]:
        document = self.execution_context.graphql_document
        errors = _long_numbers.get(document, long_number_literals) if document is not None else []
        if errors:
            self.execution_context.pre_execution_errors = errors
            yield
            return
        yield from super().on_validate()


def schema_extensions() -> list:
    # Agents and the SPA send the same few documents over and over: parse and validate each once.
    tracing = [OpenTelemetryExtension] if tracing_enabled() else []
    return [
        *tracing,
        TracedErrors,
        ParsedDocuments,
        lambda: CheckedValidationCache(maxsize=512),
        lambda: AddValidationRules(LIMIT_RULES),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
    ]
