"""A GraphQL-over-HTTP client used by tests the way the SPA and agents use the API."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from app.accounts import services as accounts

PASSWORD = "correct horse battery"  # every test person's password

class GraphQLError(AssertionError):
    pass


class GraphQLClient:
    def __init__(self, base_url: str, token: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30)

    async def __aenter__(self) -> GraphQLClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.http.aclose()

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The raw response body ({data, errors})."""
        response = await self.http.post("/graphql", json={"query": query, "variables": variables or {}})
        assert response.status_code == 200, response.text
        return response.json()

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """`data`, failing the test on any GraphQL error."""
        body = await self.execute(query, variables)
        if body.get("errors"):
            raise GraphQLError(body["errors"])
        return body["data"]

    async def error(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The first GraphQL error (the test expects one)."""
        body = await self.execute(query, variables)
        assert body.get("errors"), f"expected an error, got {body}"
        return body["errors"][0]


class Person:
    """A human with a browser session (`web`) and an agent holding their API key (`agent`)."""

    def __init__(self, user_id: str, gid: str, handle: str, email: str, web: GraphQLClient,
                 agent: GraphQLClient, api_key: str) -> None:
        self.user_id, self.gid, self.handle, self.email = user_id, gid, handle, email
        self.web, self.agent, self.api_key = web, agent, api_key

    @classmethod
    async def create(cls, base_url: str, prefix: str, *, admin: bool = False) -> Person:
        handle = f"{prefix}-{uuid.uuid4().hex[:8]}"
        email = f"{handle}@example.test"
        web = GraphQLClient(base_url)
        body = await web.data(
            """mutation($i: SignUpInput!) { signUp(input: $i) {
                 __typename ... on ViewerSession { viewer { id } } ... on ValidationFailed { message } } }""",
            {"i": {"handle": handle, "email": email, "password": PASSWORD}},
        )
        assert body["signUp"]["__typename"] == "ViewerSession", body
        gid = body["signUp"]["viewer"]["id"]
        if admin:
            from app.accounts.models import User

            await User.filter(handle=handle).update(is_admin=True)
        created = await web.data(
            'mutation { createApiKey(input: {name: "agent"}) { ... on CreateApiKeySuccess { secret } } }'
        )
        secret = created["createApiKey"]["secret"]
        user = await accounts.User.get(handle=handle)
        return cls(str(user.id), gid, handle, email, web, GraphQLClient(base_url, secret), secret)

    async def close(self) -> None:
        await self.web.close()
        await self.agent.close()
