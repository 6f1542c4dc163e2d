"""`mlpatron ledger check`: recompute every balance from the postings and compare.

Plain SQL aggregates: one pass over each table, whatever the size of the ledger.
"""

from __future__ import annotations

from typing import Any

from tortoise import connections

from app.funding import ledger

# Accounts that are not the balance of a row: money's sources and the platform's revenue.
_PLATFORM = {ledger.STRIPE, ledger.CREDIT_GRANTS, ledger.PLATFORM_REVENUE}


async def _rows(sql: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = await connections.get("default").execute_query_dict(sql)
    return rows


async def check_ledger() -> list[str]:
    """Every mismatch found, as readable lines; an empty list means the books balance."""
    balances = {r["account"]: int(r["balance"]) for r in await _rows(
        "SELECT account, SUM(amount_cents) AS balance FROM ledger_postings GROUP BY account")}
    audit = _Audit(balances)
    await audit.transactions()
    await audit.wallets_and_projects()
    await audit.runs()
    await audit.fundings()
    audit.stray_accounts()
    return audit.problems


class _Audit:
    def __init__(self, balances: dict[str, int]) -> None:
        self.balances = balances
        self.problems: list[str] = []
        self.unexplained = set(balances) - _PLATFORM  # accounts no row has claimed yet

    def expect(self, account: str, stored: int, what: str) -> None:
        self.unexplained.discard(account)
        derived = self.balances.get(account, 0)
        if derived != stored:
            self.problems.append(f"{what}: stored {stored}, ledger {derived} ({account})")
        if stored < 0:
            self.problems.append(f"{what} is negative: {stored}")

    async def transactions(self) -> None:
        for t in await _rows(
            "SELECT t.id, t.kind, COALESCE(SUM(p.amount_cents), 0) AS total, COUNT(p.id) AS lines "
            "FROM ledger_transactions t LEFT JOIN ledger_postings p ON p.transaction_id = t.id "
            "GROUP BY t.id, t.kind HAVING COALESCE(SUM(p.amount_cents), 0) <> 0 OR COUNT(p.id) < 2"
        ):
            self.problems.append(
                f"transaction {t['id']} ({t['kind']}): {t['lines']} postings summing to {int(t['total'])}")

    async def wallets_and_projects(self) -> None:
        for w in await _rows("SELECT user_id, cash_cents, credit_cents FROM wallets"):
            self.expect(ledger.user_cash(w["user_id"]), w["cash_cents"], f"wallet {w['user_id']} cash")
            self.expect(ledger.user_credit(w["user_id"]), w["credit_cents"], f"wallet {w['user_id']} credit")
        for p in await _rows("SELECT id, balance_cents FROM projects"):
            self.expect(ledger.project_balance(p["id"]), p["balance_cents"], f"project {p['id']} balance")

    async def runs(self) -> None:
        """Escrows against fundings and settlements; platform revenue against the settled costs."""
        revenue = 0
        for r in await _rows(
            "SELECT r.id, r.funded_cents, COALESCE(f.total, 0) AS fundings, s.escrow_cents, s.cost_cents, "
            "s.refunded_cents, s.to_project_cents FROM runs r "
            "LEFT JOIN (SELECT run_id, SUM(amount_cents) AS total FROM fundings GROUP BY run_id) f "
            "ON f.run_id = r.id LEFT JOIN settlements s ON s.run_id = r.id"
        ):
            revenue += self._run(r)
        if self.balances.get(ledger.PLATFORM_REVENUE, 0) != revenue:
            self.problems.append(f"platform revenue: ledger {self.balances.get(ledger.PLATFORM_REVENUE, 0)}, "
                                 f"settled costs {revenue}")

    def _run(self, r: dict[str, Any]) -> int:
        """Check one run; returns its settled cost (0 while unsettled)."""
        fundings, settled = int(r["fundings"]), r["escrow_cents"] is not None
        if r["funded_cents"] != fundings:
            self.problems.append(f"run {r['id']}: funded_cents {r['funded_cents']} but fundings total {fundings}")
        self.expect(ledger.run_escrow(r["id"]), 0 if settled else fundings, f"run {r['id']} escrow")
        if not settled:
            return 0
        closed = r["cost_cents"] + r["refunded_cents"] + r["to_project_cents"]
        if r["escrow_cents"] != fundings or closed != fundings:
            self.problems.append(f"run {r['id']} settlement: escrow {r['escrow_cents']}, cost + returned {closed}, "
                                 f"fundings {fundings}")
        return int(r["cost_cents"])

    async def fundings(self) -> None:
        for f in await _rows(
            "SELECT id, amount_cents, credit_cents, cash_cents, project_balance_cents, refunded_cents, "
            "to_project_cents FROM fundings WHERE amount_cents <> credit_cents + cash_cents + project_balance_cents "
            "OR amount_cents <= 0 OR refunded_cents + to_project_cents > amount_cents"
        ):
            self.problems.append(
                f"funding {f['id']}: amount {f['amount_cents']} = credit {f['credit_cents']} + cash "
                f"{f['cash_cents']} + project {f['project_balance_cents']}, returned "
                f"{f['refunded_cents'] + f['to_project_cents']}")

    def stray_accounts(self) -> None:
        for account in sorted(self.unexplained):
            if self.balances[account]:
                self.problems.append(
                    f"account {account} holds {self.balances[account]} but belongs to no wallet, project or run")
