"""The agent guide (`/agent-guide.md`) and its index (`/llms.txt`).

The workflows are written by hand (`agent-guide.md`, every GraphQL document in it executed by
tests/test_agent_guide.py); the error table, the limits and the API reference are generated
here from the live schema, the next-step table and the settings, so they cannot fall behind.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from graphql import (
    GraphQLArgument,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    NullValueNode,
    build_schema,
    print_ast,
)
from graphql import get_named_type as named

from app.api.extensions import MAX_ALIASES, MAX_DEPTH, MAX_TOKENS
from app.api.next_steps import GRAPHQL, TYPED
from app.api.pagination import MAX_PAGE
from app.api.runs.schema import PARSE_PER_HOUR
from app.core.settings import Settings

SOURCE = Path(__file__).with_name("agent-guide.md")
BASE_URL, WS_URL = "{{BASE_URL}}", "{{WS_URL}}"  # where the guide names the platform's addresses

SUMMARY = ("mlpatron crowdfunds ML experiments: researchers submit runs of MLflow projects, a dryrun prices "
           "each run, patrons fund it from their wallets, and the funded job runs on GPUs with live status, "
           "logs and MLflow metrics. One GraphQL API for people, AI agents (API keys) and live dashboards.")


def _first_line(text: str | None) -> str:
    return (text or "").strip().split("\n")[0]


def error_table(schema: GraphQLSchema) -> str:
    rows = ["| code | returned as | what to do next |", "|---|---|---|"]
    rows += [f"| `{code.value}` | typed error (`... on Error`){' or GraphQL error' if code.value in GRAPHQL else ''} "
             f"| {action} |" for code, action in TYPED.items()]
    rows += [f"| `{code}` | GraphQL error (`extensions.code`) | {action} |" for code, action in GRAPHQL.items()
             if code not in {c.value for c in TYPED}]
    typed = sorted((t for t in schema.type_map.values() if isinstance(t, GraphQLObjectType)
                    and any(i.name == "Error" for i in t.interfaces)), key=lambda t: t.name)
    base = set(schema.type_map["Error"].fields)  # type: ignore[attr-defined]
    extras = [f"- `{t.name}" + (" { " + " ".join(f for f in t.fields if f not in base) + " }"
                                if set(t.fields) - base else "") + "`" for t in typed]
    return "\n".join([*rows, "", "Typed error types (each also has `code message recommendedAction "
                      "retryAfterSeconds`):", "", *extras])


def limits_table(settings: Settings) -> str:
    s = settings
    rows = [
        "| what | limit |", "|---|---|",
        f"| dryruns (`createRun`, `copyRun`) | {s.dryruns_per_day} per user in any 24 hours, {s.concurrent_dryruns} "
        "running at once (typed `RateLimited`, `quota` DRYRUNS_PER_DAY / CONCURRENT_DRYRUNS) |",
        f"| `parseMlproject` | {PARSE_PER_HOUR} per user per hour |",
        f"| discussions (`createProjectDiscussion`, `createDiscussion`) | {s.discussions_per_hour} per hour "
        f"({s.discussions_per_hour_api_key} with an API key) |",
        f"| `createComment` | {s.comments_per_hour} per hour ({s.comments_per_hour_api_key} with an API key) |",
        f"| `submitFeedback` | {s.feedback_per_day} per day |",
        f"| `signUp`, `login` | {s.auth_attempts_per_hour} per client IP per hour |",
        "| `/graphql` (HTTP requests, websocket connections) and `/artifacts/` downloads | "
        f"{s.requests_per_minute} per minute per API key "
        f"(or browser session), {s.anonymous_requests_per_minute} per minute per IP without one: HTTP 429 with "
        "`Retry-After` |",
        f"| every request | pages of at most {MAX_PAGE} (`first`/`last`), query depth {MAX_DEPTH}, "
        f"{MAX_ALIASES} aliases, {MAX_TOKENS} tokens |",
    ]
    return "\n".join(rows)


def _declared(name: str, value: GraphQLArgument | GraphQLInputField) -> str:
    """`name: Type`, with ` = default` when there is one (a field with a default may be left out)."""
    text = f"{name}: {value.type}"
    default = value.ast_node.default_value if value.ast_node else None
    if default is None or isinstance(default, NullValueNode):
        return text
    return f"{text} = {print_ast(default).replace('{  }', '{}')}"


def _signature(name: str, field: GraphQLField) -> str:
    args = ", ".join(_declared(a, arg) for a, arg in field.args.items())
    return f"`{name}({args}): {field.type}`" if args else f"`{name}: {field.type}`"


def _fields_of(t: GraphQLNamedType) -> str:
    assert isinstance(t, GraphQLInputObjectType)
    return ", ".join(_declared(n, f) for n, f in t.fields.items())


def reference(schema: GraphQLSchema) -> str:
    out: list[str] = []
    for root in (schema.query_type, schema.mutation_type, schema.subscription_type):
        assert root is not None
        out += [f"### {root.name}", ""]
        for name, field in root.fields.items():
            out.append(f"- {_signature(name, field)}" + (f": {d}" if (d := _first_line(field.description)) else ""))
            for arg in field.args.values():
                if isinstance(named(arg.type), GraphQLInputObjectType):
                    out.append(f"  - `{named(arg.type).name}`: `{_fields_of(named(arg.type))}`")
            answer = named(field.type)
            if isinstance(answer, GraphQLUnionType):
                out.append("  - answers: " + " | ".join(f"`{t.name}`" for t in answer.types))
        out.append("")
    return "\n".join(out)


@cache
def _source() -> str:
    return SOURCE.read_text()


LLMS_TXT = f"""# mlpatron

> {SUMMARY}

- Endpoint: `POST {BASE_URL}/graphql` (queries, mutations); websocket `{WS_URL}/graphql` with `graphql-transport-ws` \
(subscriptions: live job status and logs, resumable with `afterSeq`).
- Auth: `Authorization: Bearer mlp_sk_…`, an API key a human creates in the web UI (Settings → API keys).
- Money is integer cents; `createRun`, `copyRun` and `fundRun` take an `idempotencyKey`: reuse it when retrying.
- Mutations answer a union: success, or a typed error implementing `Error {{ code message recommendedAction \
retryAfterSeconds }}`.

## Docs

- [Agent guide]({BASE_URL}/agent-guide.md): researcher and patron workflows as copy-pasteable GraphQL, diagnosing \
failed jobs, live streams, money rules, every error code with what to do next, rate limits and quotas
- [GraphQL schema]({BASE_URL}/schema.graphql): the complete SDL, generated from the code

## Optional

- [GraphiQL]({BASE_URL}/graphql): the schema explorer, in a browser
"""


def agent_guide(sdl: str, settings: Settings) -> str:
    """From the schema's SDL (built again, so every default value keeps its literal); the
    platform's addresses are left as markers for `addressed`."""
    schema = build_schema(sdl)
    generated = {"errors": error_table(schema), "limits": limits_table(settings), "reference": reference(schema)}
    text = _source()
    for marker, body in generated.items():
        text = text.replace(f"<!-- generated: {marker} -->", body)
    return text


def addressed(text: str, base_url: str) -> str:
    """`text` naming the platform at `base_url` (http[s]://host[:port]) and its websocket twin."""
    base = base_url.rstrip("/")
    return text.replace(BASE_URL, base).replace(WS_URL, "ws" + base.removeprefix("http"))


def llms_txt(base_url: str) -> str:
    return addressed(LLMS_TXT, base_url)
