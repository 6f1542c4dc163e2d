"""Admin credit grants (GraphQL and CLI), `mlpatron ledger check`, and who sees which money lists."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

from app.core.settings import get_settings
from app.funding.models import Wallet
from tests.test_money_support import (
    assert_books_balance,
    books,
    fund,
    gid,
    give_credit,
    make_project,
    make_run,
    patrons,
    wallet_of,
)

GRANT = """mutation($i: GrantCreditInput!) { grantCredit(input: $i) { __typename
  ... on GrantCreditSuccess { user { handle } balance { cashCents creditCents } }
  ... on ValidationFailed { fields { field message } } } }"""


async def mlpatron(*args: str) -> tuple[int, str]:
    """Run the real command line against the test database and Redis."""
    settings = get_settings()
    env = {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from app.cli import main; main()", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_only_admins_grant_credit(make_person) -> None:
    admin, user = await make_person("admin", admin=True), await make_person("grantee")
    err = await user.web.error(GRANT, {"i": {"userId": user.gid, "amountCents": 500, "reason": "self-service"}})
    assert err["extensions"]["code"] == "FORBIDDEN"
    before = await books(users=[user.user_id])
    for amount, reason, field in [(0, "ok", "amountCents"), (10_000_001, "ok", "amountCents"), (5, "  ", "reason")]:
        bad = (await admin.web.data(GRANT, {"i": {"userId": user.gid, "amountCents": amount, "reason": reason}}))
        assert bad["grantCredit"]["__typename"] == "ValidationFailed"
        assert bad["grantCredit"]["fields"][0]["field"] == field
    assert await books(users=[user.user_id]) == before
    missing = await admin.web.error(GRANT, {"i": {"userId": gid("User", uuid.uuid4()), "amountCents": 5,
                                                  "reason": "x"}})
    assert missing["extensions"]["code"] == "NOT_FOUND"

    ok = await admin.agent.data(GRANT, {"i": {"userId": user.gid, "amountCents": 1500, "reason": "launch promo"}})
    assert ok["grantCredit"] == {"__typename": "GrantCreditSuccess", "user": {"handle": user.handle},
                                 "balance": {"cashCents": 0, "creditCents": 1500}}
    mine = await user.web.data("{ viewer { transactions { nodes { kind memo amountCents } } } }")
    assert mine["viewer"]["transactions"]["nodes"] == [
        {"kind": "CREDIT_GRANT", "memo": f"launch promo (granted by @{admin.handle})", "amountCents": 1500}]
    await assert_books_balance()


async def test_cli_grants_credit_and_ledger_check_catches_any_mismatch(make_person) -> None:
    person = await make_person("cli")
    code, out = await mlpatron("credit", "grant", "--user", person.handle, "--cents", "250", "--reason", "welcome")
    assert code == 0, out
    assert await wallet_of(person.user_id) == (0, 250)
    code, out = await mlpatron("credit", "grant", "--user", "no-such-user", "--cents", "250", "--reason", "x")
    assert code == 2 and "no user" in out

    code, out = await mlpatron("ledger", "check")
    assert code == 0 and "ledger check passed" in out, out
    # A balance edited behind the ledger's back is reported, with what differs.
    await Wallet.filter(user_id=person.user_id).update(credit_cents=251)
    try:
        code, out = await mlpatron("ledger", "check")
        assert code == 1, out
        assert f"MISMATCH wallet {person.user_id} credit: stored 251, ledger 250" in out
    finally:
        await Wallet.filter(user_id=person.user_id).update(credit_cents=250)
    await assert_books_balance()


async def test_money_lists_are_private_except_the_projects(api: str, make_person) -> None:
    async with patrons(api, 2) as (owner, patron):
        await give_credit(patron.user_id, 1000)
        project = await make_project(owner.user_id)
        run = await make_run(project, 10_000)
        for amount in (100, 200, 300):
            await fund(patron.agent, run, amount)
        other = await make_person("curious")
        for field in ("fundings { nodes { id } }", "transactions { nodes { kind } }", "balance { cashCents }"):
            err = await other.web.error(f"query($id: ID!) {{ user(id: $id) {{ {field} }} }}",
                                        {"id": gid("User", patron.user_id)})
            assert err["extensions"]["code"] == "FORBIDDEN", field

        # Keyset pages over the patron's wallet history: newest first, no gaps, no repeats.
        seen, after = [], None
        while True:
            page = (await patron.agent.data(
                "query($after: String) { viewer { transactions(first: 2, after: $after) { "
                "nodes { kind amountCents } pageInfo { hasNextPage endCursor } } } }", {"after": after}
            ))["viewer"]["transactions"]
            seen += [(t["kind"], t["amountCents"]) for t in page["nodes"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert seen == [("FUNDING", -300), ("FUNDING", -200), ("FUNDING", -100), ("CREDIT_GRANT", 1000)]

        funding_id = (await patron.agent.data("{ viewer { fundings(first: 1) { nodes { id } } } }"))[
            "viewer"]["fundings"]["nodes"][0]["id"]
        public = await other.web.data("query($id: ID!) { node(id: $id) { ... on Funding { amountCents "
                                      "funder { handle } } } }", {"id": funding_id})
        assert public["node"] == {"amountCents": 300, "funder": {"handle": patron.handle}}
        listed = await other.web.data("query($id: ID!) { project(id: $id) { transactions { nodes { kind } } } }",
                                      {"id": gid("Project", project.id)})
        assert listed["project"]["transactions"]["nodes"] == []  # nothing reached the project balance yet
