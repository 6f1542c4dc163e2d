"""Schema-driven fuzzing (schemathesis, GraphQL mode) against the live test server, anonymous and
with an API key: no input may produce an HTTP 5xx or an INTERNAL_SERVER_ERROR.

Bounded: a fixed number of examples per operation (derandomised, so a failure reproduces) and a
time budget per identity. Git URLs in generated input meet a resolver that answers nothing, so
the fuzzer never reaches the network."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import pytest
import schemathesis
from graphql.utilities.value_to_literal import default_scalar_value_to_literal
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis.graphql import nodes

from app.execution import git

EXAMPLES = 6  # per operation and identity
BUDGET_SECONDS = 40.0  # per identity: both stay well under the 90 s the suite allows the fuzzer

# The custom scalars: JSON (run parameters: objects of scalars, any nesting the policy must refuse)
# as GraphQL literals, and DateTime.
_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_names, inner, max_size=3), max_leaves=8)
schemathesis.graphql.scalar("JSON", _json.map(default_scalar_value_to_literal))
schemathesis.graphql.scalar("DateTime", st.datetimes().map(lambda d: nodes.String(d.isoformat())))


async def no_dns(host: str, port: int) -> list[str]:
    raise socket.gaierror(socket.EAI_NONAME, "the fuzzer does not resolve names")


@pytest.fixture
async def offline_git() -> AsyncIterator[None]:
    git.set_resolver(no_dns)
    try:
        yield
    finally:
        git.set_resolver(git.system_resolver)


def fuzz(base_url: str, headers: dict[str, str]) -> tuple[int, list[str]]:
    """(requests made, failures): runs in a thread while the test's event loop serves the API."""
    schema = schemathesis.graphql.from_url(f"{base_url}/graphql", headers=headers, timeout=30)
    failures: list[str] = []
    calls = 0
    deadline = time.monotonic() + BUDGET_SECONDS
    for result in schema.get_all_operations():
        operation = result.ok()
        if time.monotonic() > deadline:
            break

        @hypothesis_settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                             phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:
            nonlocal calls
            calls += 1
            response = case.call(headers=headers, timeout=30)
            if response.status_code >= 500 or "INTERNAL_SERVER_ERROR" in response.text:
                failures.append(f"HTTP {response.status_code} for {str(case.body)[:300]} -> {response.text[:300]}")

        check()
    return calls, failures


@pytest.mark.parametrize("identity", ["anonymous", "api-key"])
async def test_fuzzing_finds_no_server_error(api: str, make_person, offline_git, identity: str) -> None:
    headers = {}
    if identity == "api-key":
        headers["Authorization"] = f"Bearer {(await make_person('fuzz')).api_key}"
    calls, failures = await asyncio.to_thread(fuzz, api, headers)
    assert calls > 100, f"the fuzzer barely ran ({calls} requests)"
    assert not failures, f"{len(failures)} server errors in {calls} requests:\n" + "\n".join(failures[:20])
