from pathlib import Path

from app.schema import schema

ROOT = Path(__file__).resolve().parent.parent


def test_schema_graphql_matches_code() -> None:
    """`schema.graphql` is generated (`mlpatron export-schema`); a change to the API must regenerate it."""
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == schema.as_str() + "\n", "schema.graphql is stale: run `make schema` and review the diff"
