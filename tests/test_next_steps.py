"""Every error says what to do next: `recommendedAction` on every typed `Error` payload (and
`retryAfterSeconds` where waiting helps), `extensions.recommendedAction` on GraphQL errors."""

from __future__ import annotations

import uuid

from app.api.next_steps import GRAPHQL, TYPED
from app.core.errors import ErrorCode
from app.schema import schema
from tests.test_money_support import gid


def test_every_code_has_a_next_step() -> None:
    assert set(TYPED) == set(ErrorCode)
    assert all(action.strip().endswith(".") for action in [*TYPED.values(), *GRAPHQL.values()])


def test_every_error_type_carries_the_next_step() -> None:
    error_types = [t for t in schema._schema.type_map.values()
                   if getattr(t, "interfaces", None) and any(i.name == "Error" for i in t.interfaces)]
    assert len(error_types) >= 10
    for t in error_types:
        assert {"recommendedAction", "retryAfterSeconds"} <= set(t.fields), t.name


async def test_typed_and_graphql_errors_over_http(make_person) -> None:
    person = await make_person("next")
    typed = (await person.agent.data("""mutation { createProject(input: {title: "", gitUrl: "ssh://x"}) {
      ... on ValidationFailed { code recommendedAction retryAfterSeconds fields { field } } } }"""))["createProject"]
    assert typed["recommendedAction"] == TYPED[ErrorCode.VALIDATION_FAILED] and typed["retryAfterSeconds"] is None
    missing = await person.agent.error("query($id: ID!) { run(id: $id) { id } }", {"id": gid("Run", uuid.uuid4())})
    assert missing["extensions"]["code"] == "NOT_FOUND"
    assert missing["extensions"]["recommendedAction"] == GRAPHQL["NOT_FOUND"]
