"""The read path at scale: statements per request do not grow with `first:`, and every statement a
nested page sends is served by an index.

Rows are written with SQL (bench/seed.py and a few scoped inserts), under a unique title, in
terminal states nothing background acts on, and removed at the end of each test.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from bench import seed
from bench.statements import HEADER, StatementCounter, counting_statements
from tests.client import Person

PROJECTS, RUNS_PER_PROJECT, DISCUSSIONS, COMMENTS, REVISIONS = 15, 12, 15, 12, 12
# Jobs seeded as pending carry a foreign executor handle: the reconciler neither launches nor adopts them.
FOREIGN_HANDLE = json.dumps({"name": "seeded", "owner": {"host": "elsewhere", "pid": 1}})

# Every list field nested under a list ($n everywhere). A loader's loads coalesce into one statement
# within an event-loop tick, so each query asks a by-id loader (users, runs…) from one branch only:
# loads from two sibling pages finishing at different times may take one statement or two.
NESTED = {
    "projects > owner, runs > creator, jobs": """query($t: String!, $n: Int!) { projects(search: $t, first: $n) {
        edges { cursor node { title owner { handle } viewerIsFollowing
          stats { totalRuns totalFundedCents runsByStatus { status count } followers }
          runs(first: $n) { edges { node { title status creator { handle } project { title }
            dryrunJob { status queuePosition timeline { status } } activeJobStatus } } } } } } }""",
    "projects > runs > fundings > funder": """query($t: String!, $n: Int!) { projects(search: $t, first: $n) {
        edges { node { runs(first: $n) { edges { node { fundings(first: $n) { edges { node { amountCents
          funder { handle } run { title } } } } } } } } } } }""",
    "projects > notesHistory > editor": """query($t: String!, $n: Int!) { projects(search: $t, first: $n) {
        edges { node { notesHistory(first: $n) { edges { node { version editor { handle } } } } } } } }""",
    "projects > discussions > comments, bodyHistory": """query($t: String!, $n: Int!) {
        projects(search: $t, first: $n) { edges { node { discussions(first: $n) { edges { node { title
            author { handle } bodyHistory(first: $n) { edges { node { version } } }
            comments(first: $n) { edges { node { body author { handle } bodyHistory(first: $n) { edges { node {
              version } } } } } } } } } } } } }""",
    "projects > transactions, runs > transactions": """query($t: String!, $n: Int!) {
        projects(search: $t, first: $n) { edges { node { transactions(first: $n) { edges { node { amountCents
          postings { account } } } } runs(first: $n) { edges { node { transactions(first: $n) { edges { node {
          kind } } } } } } } } } }""",
    "jobs(PENDING) > queuePosition, run > project": """query($n: Int!) { jobs(status: PENDING, first: $n) {
        edges { node { queuePosition timeline { status } logs(tail: 5) { seq line } run { title project { title } }
        } } } }""",
    "viewer > fundings > run > fundings": """query($n: Int!) { viewer { apiKeys { name } balance { totalCents }
        fundings(first: $n) { edges { node { run { title fundings(first: $n) { edges { node { amountCents } } } }
        } } } } }""",
}


async def _seed(conn: asyncpg.Connection, token: str, viewer_id: str, runs_per_project: int,
                comments_per_discussion: int, pending_every: int = 10) -> None:
    await seed.users(conn, token, PROJECTS)
    await seed.projects(conn, token, PROJECTS, age_days=400, title=token)
    await seed.runs(conn, token, PROJECTS * runs_per_project, age_days=400,
                    statuses=["completed", "cancelled", "dryrun_failed"], funded=False)
    ours = "SELECT id FROM projects WHERE title LIKE $1 || ' %'"
    runs = f"SELECT id, created_at FROM runs WHERE project_id IN ({ours})"
    await conn.execute(
        f"""INSERT INTO jobs (id, created_at, run_id, kind, status, executor, handle, spec, deadline_seconds,
                             log_seq, event_seq)
            SELECT gen_random_uuid(), r.created_at, r.id, 'dryrun',
                   CASE WHEN row_number() OVER (ORDER BY r.created_at, r.id) % $3 = 0 THEN 'pending'
                        ELSE 'succeeded' END, 'local', $2, '{{}}', 600, 0, 0
            FROM ({runs}) r""", token, FOREIGN_HANDLE, pending_every)
    await conn.execute(f"UPDATE runs SET dryrun_job_id = j.id FROM jobs j WHERE j.run_id = runs.id "
                       f"AND runs.project_id IN ({ours})", token)
    # Fundings by the viewer on runs that were never funded: read-only rows, removed with the rest.
    await conn.execute(
        f"""INSERT INTO fundings (id, created_at, run_id, funder_id, amount_cents, credit_cents, cash_cents,
                                  project_balance_cents, surplus_policy, refunded_cents, to_project_cents)
            SELECT gen_random_uuid(), r.created_at + make_interval(secs => k), r.id, $2::uuid, 100 * k, 100 * k, 0,
                   0, 'to_project', 0, 0
            FROM ({runs}) r CROSS JOIN generate_series(1, 2) k""", token, viewer_id)
    first_owner = f"{token}-1"
    await conn.execute(
        f"""INSERT INTO discussions (id, created_at, project_id, author_id, title, body, body_version, is_pinned,
                                     comment_count, last_activity_at, sort_key, updated_at)
            SELECT gen_random_uuid(), now() - make_interval(secs => i), p.id, u.id, 'Discussion ' || i, 'Body', 1,
                   false, $3, now(), -i, now()
            FROM generate_series(1, $4) i CROSS JOIN ({ours}) p JOIN users u ON u.handle = $2""",
        token, first_owner, comments_per_discussion, DISCUSSIONS)
    discussions = f"SELECT d.id, d.created_at, d.author_id FROM discussions d WHERE d.project_id IN ({ours})"
    await conn.execute(
        f"""INSERT INTO comments (id, created_at, discussion_id, parent_id, author_id, body, body_version, path,
                                  depth, updated_at)
            SELECT gen_random_uuid(), d.created_at + make_interval(secs => c), d.id, NULL, d.author_id,
                   'Comment ' || c, 1, lpad(c::text, 8, '0'), 0, now()
            FROM ({discussions}) d CROSS JOIN generate_series(1, $2) c""", token, comments_per_discussion)
    for entity_type, table in (("project", ours), ("discussion", discussions)):
        await conn.execute(
            f"""INSERT INTO revisions (id, created_at, entity_type, entity_id, version, body, editor_id,
                                       edit_summary)
                SELECT gen_random_uuid(), now(), $2, e.id, v, 'v' || v, $3::uuid, ''
                FROM ({table}) e CROSS JOIN generate_series(1, $4) v""", token, entity_type, viewer_id, REVISIONS)
    await conn.execute(f"INSERT INTO project_subscriptions (id, created_at, user_id, project_id) "
                       f"SELECT gen_random_uuid(), now(), $2::uuid, id FROM ({ours}) p LIMIT 3", token, viewer_id)


async def _remove(conn: asyncpg.Connection, token: str) -> None:
    ours = "SELECT id FROM projects WHERE title LIKE $1 || ' %'"
    discussions = f"SELECT id FROM discussions WHERE project_id IN ({ours})"
    runs = f"SELECT id FROM runs WHERE project_id IN ({ours})"
    for statement in (
        f"DELETE FROM revisions WHERE entity_id IN ({ours})",
        f"DELETE FROM revisions WHERE entity_id IN ({discussions})",
        f"DELETE FROM comments WHERE discussion_id IN ({discussions})",
        f"DELETE FROM discussions WHERE project_id IN ({ours})",
        f"DELETE FROM fundings WHERE run_id IN ({runs})",
        f"DELETE FROM jobs WHERE run_id IN ({runs})",
        f"DELETE FROM runs WHERE project_id IN ({ours})",
        f"DELETE FROM project_subscriptions WHERE project_id IN ({ours})",
        f"DELETE FROM projects WHERE id IN ({ours})",
        "DELETE FROM users WHERE handle LIKE $1 || '-%'",
    ):
        await conn.execute(statement, token)


@pytest.fixture
async def viewer(make_person) -> Person:
    return await make_person("reader")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def _statements(counter: StatementCounter, viewer: Person, query: str,
                      variables: dict[str, Any]) -> list[tuple[str, tuple[Any, ...]]]:
    token = counter.new_token()
    response = await viewer.web.http.post("/graphql", json={"query": query, "variables": variables},
                                          headers={HEADER: token})
    body = response.json()
    assert response.status_code == 200 and not body.get("errors"), body
    return counter.by_token[token]


async def test_statements_per_request_do_not_grow_with_page_size(viewer: Person, db: asyncpg.Connection) -> None:
    token = f"rp{uuid.uuid4().hex[:8]}"
    await _seed(db, token, viewer.user_id, RUNS_PER_PROJECT, COMMENTS)
    try:
        with counting_statements() as counter:
            for name, query in NESTED.items():
                counts = {}
                for n in (10, 50):
                    sent = await _statements(counter, viewer, query, {"t": token, "n": n})
                    counts[n] = len(sent)
                assert counts[10] == counts[50], f"{name}: {counts} statements for first 10 / 50: {[q[:90] for q, _ in sent]}"
                # One statement per level of nesting (plus authentication), whatever the sizes.
                assert counts[10] <= 12, f"{name}: {counts[10]} statements"
            # A list of runs reads the big columns only when it shows them.
            for shown, read in (("title status", False), ("title notesHtml parameters", True)):
                query = f"""query($t: String!) {{ projects(search: $t, first: 5) {{ edges {{ node {{
                    runs(first: 5) {{ edges {{ node {{ {shown} }} }} }} }} }} }} }}"""
                sent = await _statements(counter, viewer, query, {"t": token})
                [window] = [q for q, _ in sent if "FROM runs t" in q]
                assert ("t.notes" in window and "t.parameters" in window) == read, window
    finally:
        await _remove(db, token)


def _plan_problems(node: dict[str, Any], big: set[str]) -> list[str]:
    """Sequential scans of the big tables, and filters that throw away more rows than they keep."""
    problems = []
    relation = node.get("Relation Name")
    if node["Node Type"] == "Seq Scan" and relation in big:
        problems.append(f"Seq Scan on {relation}")
    removed = node.get("Rows Removed by Filter", 0)
    kept = node.get("Actual Rows", 0) * node.get("Actual Loops", 1)
    if relation in big and removed > max(kept, 20):
        problems.append(f"{node['Node Type']} on {relation}: filter removed {removed} rows, kept {kept}")
    for child in node.get("Plans", []):
        problems.extend(_plan_problems(child, big))
    return problems


async def test_every_nested_page_is_an_index_scan_at_100k_rows(viewer: Person, db: asyncpg.Connection) -> None:
    """10^5 runs, jobs, fundings and comments: each SELECT the API sends for the nested queries,
    EXPLAIN ANALYZEd with its own arguments, reads the big tables through indexes."""
    token = f"rx{uuid.uuid4().hex[:8]}"
    runs_per_project = 100_000 // PROJECTS
    await _seed(db, token, viewer.user_id, runs_per_project, 100_000 // (PROJECTS * DISCUSSIONS), pending_every=100)
    big = {"runs", "jobs", "fundings", "comments"}
    try:
        for table in big:
            await db.execute(f"VACUUM ANALYZE {table}")
        with counting_statements() as counter:
            sent = [s for query in NESTED.values()
                    for s in await _statements(counter, viewer, query, {"t": token, "n": 20})]
        selects = {repr(s): s for s in sent if s[0].lstrip().upper().startswith(("SELECT", "WITH"))}
        assert selects
        problems = []
        for query, args in selects.values():
            [row] = await db.fetch(f"EXPLAIN (ANALYZE, FORMAT JSON) {query}", *args)
            plan = json.loads(row[0])[0]["Plan"]
            problems.extend(f"{p}\n    in {' '.join(query.split())[:300]}" for p in _plan_problems(plan, big))
        assert not problems, "\n".join(problems)
    finally:
        await _remove(db, token)


# Planned execution (app/api/plans.py) against graphql-core's own: the same bytes, the same errors.
PLANNED = {
    **NESTED,
    "dashboard": """query($t: String!, $n: Int!) { projects(search: $t, first: $n) { edges { node {
        title owner { handle } runs(first: $n) { edges { node { title status estimatedCostCents fundedCents } } } } } } }""",
    "aliases, ids, nodes, cursors, nulls": """query($t: String!) { projects(search: $t, first: 3) {
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor } nodes { __typename id t: title
          o: owner { id handle isAdmin } runs(first: 2, orderBy: OLDEST) { edges { cursor node { id status notesHtml
            copiedFrom { title } fundedJob { status } estimateDetail resources { gpuType spot } } } } } } }""",
    "viewer's private fields": """query($n: Int!) { viewer { handle email apiKeys { name prefix }
        fundings(first: $n) { pageInfo { hasNextPage } edges { node { amountCents run { title } } } } } }""",
    "fragments: spread, inline, on an interface, a field twice": """query($t: String!) {
        projects(search: $t, first: 3) { edges { node { ...P title ... on Node { id } ... { owner { handle } }
          runs(first: 2) { nodes { ...R status ...R } } } } } }
        fragment P on Project { title notesHtml }
        fragment R on Run { id title status fundingGapCents }""",
    "the SPA's Explore page": """query($t: String!) {
        projects(first: 12, search: $t, orderBy: RECENTLY_UPDATED) { nodes { id title updatedAt
          owner { id handle displayName } latest: runs(first: 1) { nodes { ...RunSummary } }
          fundable: runs(status: CANCELLED, first: 10) { nodes { ...RunSummary } } }
          pageInfo { hasNextPage endCursor } } }
        fragment RunSummary on Run { id title status createdAt fundedCents fundingGapCents estimatedCostCents }""",
    "the SPA's Discover page, a run's project, owner and creator": """query($t: String!) {
        runs(first: 12, search: $t, status: null, orderBy: NEWEST) { nodes { ...RunSummary creator { handle }
          project { id title balanceCents owner { id handle displayName } } } pageInfo { hasNextPage endCursor } } }
        fragment RunSummary on Run { id title status createdAt fundedCents fundingGapCents estimatedCostCents }""",
}
# graphql-core reports these (an error, null propagation) or executes them (a directive).
FALLBACK = {
    "another user's email": """query($t: String!) { projects(search: $t, first: 3) { edges { node { title
        owner { handle email } } } } }""",
    "a page too large, nested": """query($t: String!) { projects(search: $t, first: 2) { edges { node { title
        runs(first: 100000) { edges { node { title } } } } } } }""",
    "a malformed cursor": """query($t: String!) { projects(search: $t, first: 2, after: "nope") { edges { node { title
        } } } }""",
    "an unknown id": """query { project(id: "UHJvamVjdDowMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDA=") { title } }""",
    "a directive": """query($t: String!) { projects(search: $t, first: 2) { edges { node { ...P @include(if: true)
        } } } } fragment P on Project { title owner { handle } }""",
}


def _reference_schema() -> Any:
    """The platform's schema executed by graphql-core alone: strawberry's stock execution context (a
    second schema cannot be built from the same types: relay's node field is rewritten once)."""
    import copy

    from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

    from app.schema import schema

    reference = copy.copy(schema)
    reference.execution_context_class = StrawberryGraphQLCoreExecutionContext
    return reference


def _outcome(result: Any) -> tuple[bytes, list[Any]]:
    import orjson

    errors = [(e.message, e.path, {k: v for k, v in (e.extensions or {}).items() if k != "traceId"})
              for e in result.errors or []]
    return orjson.dumps(result.data), errors


async def test_planned_execution_answers_as_graphql_core(viewer: Person, db: asyncpg.Connection, services) -> None:
    from graphql import parse

    from app.accounts.models import User
    from app.api.context import Context
    from app.api.execution import Fallback
    from app.api.plans import PlannedExecutionContext, plan_for, run
    from app.api.selections import inlined
    from app.schema import schema

    token = f"rq{uuid.uuid4().hex[:8]}"
    await _seed(db, token, viewer.user_id, RUNS_PER_PROJECT, COMMENTS)
    reference = _reference_schema()
    user = await User.get(id=viewer.user_id)

    def context() -> Context:
        return Context(request=None, response=None, user=user, services=services)

    async def planned_data(query: str, variables: dict[str, Any]) -> Any:
        """The plan's own answer: Fallback means graphql-core answers instead."""
        document = parse(query)
        executor = PlannedExecutionContext.build(schema._schema, document, None, context(), variables)
        operation = inlined(executor.operation, schema._schema.query_type, executor.fragments)
        plan = plan_for(operation, schema._schema.query_type) if operation is not None else None
        if plan is None:
            raise Fallback
        return await run(plan, executor, None)

    try:
        for cases, planned in ((PLANNED, True), (FALLBACK, False)):
            for name, query in cases.items():
                variables = {k: v for k, v in {"t": token, "n": 7}.items() if f"${k}" in query}
                ours = _outcome(await schema.execute(query, variables, context_value=context()))
                theirs = _outcome(await reference.execute(query, variables, context_value=context()))
                assert ours == theirs, f"{name}:\n{ours}\n{theirs}"
                assert bool(theirs[1]) != planned or name == "a directive", f"{name}: {theirs[1]}"
                if planned:
                    import orjson

                    assert orjson.dumps(await planned_data(query, variables)) == ours[0], name
                else:
                    with pytest.raises(Fallback):
                        await planned_data(query, variables)
    finally:
        await _remove(db, token)


# Compiled reads (app/api/compiled.py) against graphql-core's own: the same bytes.
COMPILED = {
    "dashboard": PLANNED["dashboard"],
    "ids, typenames, aliases, nodes, orders, nulls": """query($t: String!) { projects(search: $t, first: 4,
        orderBy: OLDEST) { __typename nodes { __typename id t: title gitUrl notes notesVersion balanceCents createdAt
          updatedAt o: owner { __typename id handle displayName bio isAdmin createdAt }
          runs(first: 3, orderBy: OLDEST) { __typename edges { __typename node { id title status uri version
            commitSha entryPoint image dryrunOverrideParam notesVersion estimatedCostCents estimatedDurationSeconds
            fundedCents createdAt updatedAt } } } } } }""",
    "filters, empty and backward pages, the owner twice": """query($t: String!, $o: ID!) {
        mine: projects(ownerId: $o, first: 5) { edges { node { title } } }
        back: projects(search: $t, last: 3) { edges { node { title owner { handle } again: owner { id } } } }
        projects(search: $t, first: 15) { edges { node { done: runs(status: COMPLETED, first: 2) { nodes { title
          status } } none: runs(first: 0) { edges { node { title } } } } } } }""",
    "page info and cursors, after and before a cursor": """query($t: String!, $c: String!) {
        next: projects(search: $t, first: 3, after: $c) { pageInfo { __typename hasNextPage hasPreviousPage
          startCursor endCursor } edges { __typename cursor node { title runs(first: 2) { pageInfo { hasNextPage
            endCursor } edges { cursor node { title } } } } } }
        back: projects(search: $t, last: 2, before: $c) { pageInfo { hasNextPage hasPreviousPage startCursor }
          edges { cursor } nodes { title } } }""",
    "fragments, a computed field": """query($t: String!) { projects(search: $t, first: 4) { edges { node { ...P
        ... on Node { id } runs(first: 2) { nodes { ...R status } } } } } }
        fragment P on Project { title owner { ... on User { handle } } }
        fragment R on Run { id title status fundingGapCents }""",
    **{name: PLANNED[name] for name in ("the SPA's Explore page",
                                        "the SPA's Discover page, a run's project, owner and creator")},
}
# Planned instead: a field no type declares for compiled reads (resolvers, private data, JSON), a directive.
NOT_COMPILED = {
    "a resolver field": """query($t: String!) { projects(search: $t, first: 2) { edges { node { notesHtml } } } }""",
    "a JSON column": """query($t: String!) { projects(search: $t, first: 2) { edges { node {
        runs(first: 2) { edges { node { title estimateDetail } } } } } } }""",
    "private data": FALLBACK["another user's email"],
    "a directive": FALLBACK["a directive"],
}
# Compiled, but refused when read (then planned, which reports them as graphql-core does).
REFUSED = {
    "a page too large, nested": FALLBACK["a page too large, nested"],
    "a malformed cursor": FALLBACK["a malformed cursor"],
    "a malformed owner id": """{ projects(ownerId: "nope") { edges { node { title } } } }""",
    "a search too long": '{ runs(search: "%s") { nodes { title } } }' % ("x" * 201),
    "text the input policy refuses": """{ projects(search: "a\\u0000b") { edges { node { title } } } }""",
}


async def test_compiled_reads_answer_as_graphql_core(viewer: Person, db: asyncpg.Connection, services) -> None:
    import orjson
    from graphql import parse
    from strawberry import relay

    from app.accounts.models import User
    from app.api.compiled import compiled_for, read
    from app.api.context import Context
    from app.api.plans import PlannedExecutionContext
    from app.api.selections import inlined
    from app.schema import schema

    token = f"rc{uuid.uuid4().hex[:8]}"
    await _seed(db, token, viewer.user_id, RUNS_PER_PROJECT, COMMENTS)
    owner = await db.fetchval("SELECT owner_id FROM projects WHERE title LIKE $1 || ' %' LIMIT 1", token)
    page = await schema.execute("query($t: String!) { projects(search: $t, first: 4) { pageInfo { endCursor } } }",
                                {"t": token})
    cursor = page.data["projects"]["pageInfo"]["endCursor"]
    reference = _reference_schema()
    user = await User.get(id=viewer.user_id)

    def context() -> Context:
        return Context(request=None, response=None, user=user, services=services)

    def compiled(query: str, variables: dict[str, Any]) -> tuple[Any, Any]:
        document = parse(query)
        executor = PlannedExecutionContext.build(schema._schema, document, None, context(), variables)
        operation = inlined(executor.operation, schema._schema.query_type, executor.fragments)
        return compiled_for(operation, schema._schema.query_type) if operation else None, executor

    try:
        for cases in (COMPILED, NOT_COMPILED, REFUSED):
            for name, query in cases.items():
                variables = {k: v for k, v in {"t": token, "n": 7, "o": relay.to_base64("User", owner),
                                                    "c": cursor}.items()
                             if f"${k}" in query}
                ours = _outcome(await schema.execute(query, variables, context_value=context()))
                theirs = _outcome(await reference.execute(query, variables, context_value=context()))
                assert ours == theirs, f"{name}:\n{ours}\n{theirs}"
                plan, executor = compiled(query, variables)
                assert (plan is None) == (cases is NOT_COMPILED), name
                if cases is COMPILED:
                    assert not theirs[1] and theirs[0].count(b'"title"') >= 10, name
                    assert orjson.dumps(await read(plan, executor)) == theirs[0], name
                elif cases is REFUSED:
                    assert theirs[1], name
                    with pytest.raises(Exception):  # noqa: B017 - whatever the page refused with
                        await read(plan, executor)
    finally:
        await _remove(db, token)
