"""Introspection works for every type (GraphiQL, code generators and schema-driven fuzzers use
it): the full standard introspection query over HTTP, a client schema built from its answer,
and a TypeScript client generated from that answer by graphql-codegen (tests/js, no download)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from graphql import build_client_schema, get_introspection_query, print_schema

from app.schema import schema

JS = Path(__file__).resolve().parent / "js"
FULL_INTROSPECTION = get_introspection_query(descriptions=True, specified_by_url=True, directive_is_repeatable=True,
                                            schema_description=True, input_value_deprecation=True)
OPERATION = """mutation CreateRun($input: CreateRunInput!) {
  createRun(input: $input) { __typename ... on RunSuccess { run { id status } } } }"""


async def test_json_defaults_introspect(client) -> None:
    data = await client.data('{ __type(name: "CreateRunInput") { inputFields { name defaultValue } } }')
    defaults = {f["name"]: f["defaultValue"] for f in data["__type"]["inputFields"]}
    assert defaults["parameters"] in ("{}", "{  }")


async def test_full_introspection_builds_the_same_schema_and_a_generated_client(client, tmp_path: Path) -> None:
    body = await client.execute(FULL_INTROSPECTION)
    assert not body.get("errors"), body.get("errors")
    built = build_client_schema(body["data"])
    assert print_schema(built) == print_schema(schema._schema)

    (tmp_path / "introspection.json").write_text(json.dumps(body))
    (tmp_path / "operation.graphql").write_text(OPERATION)
    (tmp_path / "codegen.json").write_text(json.dumps({
        "schema": str(tmp_path / "introspection.json"),
        "documents": str(tmp_path / "operation.graphql"),
        "generates": {str(tmp_path / "client.ts"): {"plugins": ["typescript", "typescript-operations"]}},
    }))
    assert (JS / "node_modules" / ".bin" / "graphql-codegen").exists(), "run `npm ci` in tests/js (make test does)"
    proc = await asyncio.create_subprocess_exec(
        str(JS / "node_modules" / ".bin" / "graphql-codegen"), "--config", str(tmp_path / "codegen.json"),
        cwd=JS, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, out.decode()
    generated = (tmp_path / "client.ts").read_text()
    assert "export type CreateRunInput = {" in generated
    assert "export type CreateRunMutation = {" in generated
