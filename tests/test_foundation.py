"""Foundation: auth (sessions, API keys), viewer, projects, catalog, errors, limits, health."""

from __future__ import annotations

import base64

import httpx

from tests.client import GraphQLClient

CREATE_PROJECT = """mutation($i: CreateProjectInput!) { createProject(input: $i) {
  __typename
  ... on ProjectSuccess { project { id title gitUrl notesVersion owner { handle } } }
  ... on ValidationFailed { code message fields { field message } }
} }"""


async def test_health_ready_metrics(api: str) -> None:
    async with httpx.AsyncClient(base_url=api) as http:
        assert (await http.get("/health")).json() == {"status": "ok"}
        ready = (await http.get("/ready")).json()
        assert ready == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
        metrics = await http.get("/metrics")
        assert "mlpatron_graphql_requests_total" in metrics.text
        assert 'mlpatron_jobs{status="pending"}' in metrics.text and "mlpatron_realtime_topics" in metrics.text


async def test_graphql_served_with_and_without_trailing_slash(api: str) -> None:
    async with httpx.AsyncClient(base_url=api) as http:
        for path in ("/graphql", "/graphql/"):
            r = await http.post(path, json={"query": "{ __typename }"})
            assert r.status_code == 200 and r.json() == {"data": {"__typename": "Query"}}
        ide = await http.get("/graphql", headers={"Accept": "text/html"})
        assert ide.status_code == 200 and "graphiql" in ide.text.lower()


async def test_login_session_cookie_and_logout(api: str, make_person) -> None:
    person = await make_person("login")
    async with GraphQLClient(api) as browser:
        wrong = await browser.data(
            'mutation($e: String!) { login(input: {email: $e, password: "nope-nope"}) { __typename '
            "... on InvalidCredentialsError { code message } } }", {"e": person.email})
        assert wrong["login"] == {"__typename": "InvalidCredentialsError", "code": "INVALID_CREDENTIALS",
                                  "message": "Email or password is wrong."}
        assert (await browser.data("{ viewer { id } }"))["viewer"] is None
        ok = await browser.data(
            'mutation($e: String!) { login(input: {email: $e, password: "correct horse battery"}) { __typename } }',
            {"e": person.email})
        assert ok["login"]["__typename"] == "ViewerSession"
        cookie = next(c for c in browser.http.cookies.jar if c.name == "mlp_session")
        assert cookie.has_nonstandard_attr("HttpOnly")
        viewer = (await browser.data("{ viewer { handle email balance { cashCents creditCents totalCents } } }"))
        assert viewer["viewer"] == {"handle": person.handle, "email": person.email,
                                    "balance": {"cashCents": 0, "creditCents": 0, "totalCents": 0}}
        await browser.data("mutation { logout { ok } }")
        assert (await browser.data("{ viewer { id } }"))["viewer"] is None


async def test_api_keys_hashed_listed_revocable_and_human_only(api: str, make_person) -> None:
    from app.accounts.models import ApiKey

    person = await make_person("keys")
    stored = await ApiKey.filter(user_id=person.user_id)
    assert len(stored) == 1 and person.api_key not in (stored[0].key_hash, stored[0].prefix)
    assert person.api_key.startswith("mlp_sk_") and stored[0].prefix == person.api_key[:12]

    me = await person.agent.data("{ viewer { handle apiKeys { id prefix lastUsedAt revokedAt } } }")
    assert me["viewer"]["handle"] == person.handle
    [key] = me["viewer"]["apiKeys"]
    assert key["lastUsedAt"] is not None and key["revokedAt"] is None

    # An agent cannot mint keys for itself: humans only.
    err = await person.agent.error('mutation { createApiKey(input: {name: "x"}) { __typename } }')
    assert err["extensions"]["code"] == "FORBIDDEN" and err["extensions"]["traceId"]

    revoked = await person.web.data(
        "mutation($i: RevokeApiKeyInput!) { revokeApiKey(input: $i) { apiKey { revokedAt } } }",
        {"i": {"id": key["id"]}},
    )
    assert revoked["revokeApiKey"]["apiKey"]["revokedAt"] is not None
    err = await person.agent.error("{ viewer { id } }")
    assert err["extensions"]["code"] == "UNAUTHENTICATED"
    async with GraphQLClient(api, "mlp_sk_not-a-key") as bogus:
        err = await bogus.error(CREATE_PROJECT, {"i": {"title": "t", "gitUrl": "https://example.com/r.git"}})
        assert err["extensions"]["code"] == "UNAUTHENTICATED"


async def test_other_users_private_fields_are_forbidden(make_person) -> None:
    alice, bob = await make_person("alice"), await make_person("bob")
    err = await bob.agent.error("query($id: ID!) { user(id: $id) { handle email } }", {"id": alice.gid})
    assert err["extensions"]["code"] == "FORBIDDEN"
    public = await bob.agent.data("query($id: ID!) { user(id: $id) { handle } }", {"id": alice.gid})
    assert public["user"]["handle"] == alice.handle


async def test_create_update_project_owner_only(make_person, client: GraphQLClient) -> None:
    owner, other = await make_person("owner"), await make_person("other")
    anon = await client.error(CREATE_PROJECT, {"i": {"title": "x", "gitUrl": "https://example.com/x.git"}})
    assert anon["extensions"]["code"] == "UNAUTHENTICATED"

    created = await owner.agent.data(CREATE_PROJECT, {"i": {
        "title": "Scaling laws", "gitUrl": "https://github.com/mlpatron/mlpatron-demo", "notes": "# Hypothesis"}})
    project = created["createProject"]["project"]
    assert project["title"] == "Scaling laws" and project["owner"]["handle"] == owner.handle
    assert project["notesVersion"] == 1

    update = """mutation($i: UpdateProjectInput!) { updateProject(input: $i) { __typename
      ... on ProjectSuccess { project { title notes notesVersion notesHtml } }
      ... on VersionConflict { currentVersion currentBody } } }"""
    err = await other.agent.error(update, {"i": {"id": project["id"], "title": "mine now"}})
    assert err["extensions"]["code"] == "FORBIDDEN"
    done = await owner.agent.data(update, {"i": {"id": project["id"], "notes": "# Hypothesis\n\n*bigger*",
                                                 "notesBaseVersion": 1}})
    assert done["updateProject"]["project"]["notesVersion"] == 2
    assert "<em>bigger</em>" in done["updateProject"]["project"]["notesHtml"]
    stale = await owner.agent.data(update, {"i": {"id": project["id"], "notes": "other", "notesBaseVersion": 1}})
    assert stale["updateProject"] == {"__typename": "VersionConflict", "currentVersion": 2,
                                      "currentBody": "# Hypothesis\n\n*bigger*"}
    fetched = await client.data(
        "query($id: ID!) { project(id: $id) { title } node(id: $id) { id ... on Project { title } } }",
        {"id": project["id"]},
    )
    assert fetched["project"]["title"] == "Scaling laws" == fetched["node"]["title"]


async def test_project_bad_input_is_typed_and_changes_nothing(make_person) -> None:
    from app.projects.models import Project

    owner = await make_person("bad")
    before = await Project.all().count()
    for bad, field in [
        ({"title": "x" * 201, "gitUrl": "https://example.com/r.git"}, "title"),
        ({"title": "", "gitUrl": "https://example.com/r.git"}, "title"),
        ({"title": "ok", "gitUrl": "ssh://git@example.com/r.git"}, "gitUrl"),
        ({"title": "ok", "gitUrl": "http://10.0.0.1/r.git"}, "gitUrl"),
        ({"title": "ok", "gitUrl": "not a url"}, "gitUrl"),
    ]:
        result = (await owner.agent.data(CREATE_PROJECT, {"i": bad}))["createProject"]
        assert result["__typename"] == "ValidationFailed" and result["code"] == "VALIDATION_FAILED"
        assert [f["field"] for f in result["fields"]] == [field], result
    assert await Project.all().count() == before


async def test_unknown_and_malformed_ids(client: GraphQLClient) -> None:
    missing = base64.b64encode(b"Project:00000000-0000-0000-0000-000000000000").decode()
    err = await client.error("query($id: ID!) { project(id: $id) { id } }", {"id": missing})
    assert err["extensions"]["code"] == "NOT_FOUND"
    for bad in ("garbage", base64.b64encode(b"Project:not-a-uuid").decode(),
                base64.b64encode(b"User:00000000-0000-0000-0000-000000000000").decode()):
        err = await client.error("query($id: ID!) { project(id: $id) { id } }", {"id": bad})
        assert err["extensions"]["code"] == "BAD_USER_INPUT", err
    node = await client.data("query($id: ID!) { node(id: $id) { id } }", {"id": missing})
    assert node["node"] is None


async def test_projects_keyset_pagination_and_filters(make_person, client: GraphQLClient) -> None:
    owner = await make_person("pager")
    titles = [f"pager-{owner.handle}-{i}" for i in range(7)]
    for t in titles:
        await owner.agent.data(CREATE_PROJECT, {"i": {"title": t, "gitUrl": "https://example.com/r.git"}})
    query = """query($first: Int, $after: String, $last: Int, $before: String, $owner: ID, $q: String) {
      projects(first: $first, after: $after, last: $last, before: $before, ownerId: $owner, search: $q) {
        edges { cursor node { title } } pageInfo { hasNextPage hasPreviousPage endCursor startCursor } } }"""
    seen, after = [], None
    while True:
        page = (await client.data(query, {"first": 3, "after": after, "owner": owner.gid}))["projects"]
        seen += [e["node"]["title"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == list(reversed(titles))
    back = (await client.data(query, {"last": 2, "before": page["edges"][0]["cursor"], "owner": owner.gid}))
    assert [e["node"]["title"] for e in back["projects"]["edges"]] == list(reversed(titles))[4:6]
    found = await client.data(query, {"q": titles[3]})
    assert [e["node"]["title"] for e in found["projects"]["edges"]] == [titles[3]]
    await owner.agent.data(CREATE_PROJECT, {"i": {"title": "Untitled idea", "gitUrl": "https://example.com/r.git"}})
    by_owner = await client.data(query, {"q": owner.handle.upper(), "first": 20})  # who runs it, any case
    assert [e["node"]["title"] for e in by_owner["projects"]["edges"]] == ["Untitled idea", *reversed(titles)]
    err = await client.error(query, {"first": 101})
    assert err["extensions"]["code"] == "BAD_USER_INPUT"


async def test_gpu_catalog(client: GraphQLClient) -> None:
    data = await client.data("{ gpuCatalog { gpuType displayName machineTypes { machineType vcpu memoryGib gpuCount "
                             "pricePerHour { onDemandCents spotCents } } } }")
    l4 = next(g for g in data["gpuCatalog"] if g["gpuType"] == "l4")
    assert l4["machineTypes"][0]["machineType"] == "g2-standard-4"
    assert all(m["pricePerHour"]["spotCents"] < m["pricePerHour"]["onDemandCents"] for m in l4["machineTypes"])


async def test_query_limits_and_masked_errors(client: GraphQLClient) -> None:
    deep = "{ projects { edges { node { owner { " * 1 + "id" + " } } } } }"
    assert (await client.data(deep))["projects"] is not None
    aliases = "{ " + " ".join(f"a{i}: __typename" for i in range(40)) + " }"
    err = await client.error(aliases)
    assert "aliases" in err["message"].lower()
    syntax = await client.error("{ projects { ")
    assert "traceId" in syntax["extensions"] and "Traceback" not in syntax["message"]


async def test_update_viewer(make_person) -> None:
    person = await make_person("profile")
    ok = await person.agent.data('mutation { updateViewer(input: {displayName: "Ada L.", bio: "hi"}) { __typename '
                                 "... on UpdateViewerSuccess { viewer { displayName bio } } } }")
    assert ok["updateViewer"]["viewer"] == {"displayName": "Ada L.", "bio": "hi"}
    bad = await person.agent.data('mutation { updateViewer(input: {displayName: "   "}) { __typename } }')
    assert bad["updateViewer"]["__typename"] == "ValidationFailed"


def test_database_pool_size_sets_the_connections_of_a_process(monkeypatch) -> None:
    from app.core.db import tortoise_config
    from app.core.settings import Settings

    monkeypatch.delenv("DATABASE_POOL_SIZE", raising=False)
    assert Settings().database_pool_size is None
    default = tortoise_config("postgres://mlpatron@db.example:5432/mlpatron", Settings().database_pool_size)
    assert "maxsize" not in default["connections"]["default"]["credentials"]  # tortoise's own: 5
    monkeypatch.setenv("DATABASE_POOL_SIZE", "20")
    sized = tortoise_config("postgres://mlpatron@db.example:5432/mlpatron", Settings().database_pool_size)
    assert sized["connections"]["default"]["credentials"]["maxsize"] == 20
