"""GraphQL types for money: balance, fundings, deposits, ledger entries, and their connections."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import relay

from app.accounts.models import User
from app.api.context import Info
from app.api.errors import Error, converts
from app.api.ids import decode_id, encode_id
from app.api.nodes import ModelNode
from app.funding.errors import InsufficientFunds, PaymentsNotConfigured
from app.funding.models import (
    Deposit,
    DepositStatus,
    Funding,
    LedgerKind,
    SurplusPolicy,
    Wallet,
)
from app.runs.models import Run

if TYPE_CHECKING:
    from app.api.accounts.types import UserType
    from app.api.runs.types import RunType

strawberry.enum(SurplusPolicy, description="Where a funding's unspent share goes when its run settles.")
strawberry.enum(LedgerKind, name="LedgerKind")
strawberry.enum(DepositStatus, name="DepositStatus")


@strawberry.type(name="Balance")
class BalanceType:
    cash_cents: int
    credit_cents: int

    @strawberry.field
    def total_cents(self) -> int:
        return self.cash_cents + self.credit_cents

    @classmethod
    async def for_user(cls, user_id: object) -> BalanceType:
        wallet = await Wallet.get_or_none(user_id=user_id)
        return cls(cash_cents=wallet.cash_cents if wallet else 0, credit_cents=wallet.credit_cents if wallet else 0)


@strawberry.type(name="Funding")
class FundingType(ModelNode):
    model = Funding
    id: relay.NodeID[str]
    amount_cents: int = strawberry.field(description="What was taken: credit + cash + project balance.")
    credit_cents: int
    cash_cents: int
    project_balance_cents: int = strawberry.field(description="Taken from the project balance by its owner.")
    surplus_policy: SurplusPolicy
    refunded_cents: int = strawberry.field(description="Returned to where it came from when the run settled.")
    to_project_cents: int = strawberry.field(description="Surplus kept by the project when the run settled.")
    created_at: datetime
    run_id: strawberry.ID
    funder_id: strawberry.Private[str]

    @classmethod
    def from_model(cls, row: Funding) -> FundingType:
        return cls(
            id=str(row.id), amount_cents=row.amount_cents, credit_cents=row.credit_cents, cash_cents=row.cash_cents,
            project_balance_cents=row.project_balance_cents, surplus_policy=SurplusPolicy(row.surplus_policy),
            refunded_cents=row.refunded_cents, to_project_cents=row.to_project_cents, created_at=row.created_at,
            run_id=encode_id("Run", row.run_id), funder_id=str(row.funder_id),
        )

    @strawberry.field
    async def funder(self, info: Info) -> Annotated[UserType, strawberry.lazy("app.api.accounts.types")]:
        return ModelNode.of(await info.context.loaders.require(User, self.funder_id))

    @strawberry.field
    async def run(self, info: Info) -> Annotated[RunType, strawberry.lazy("app.api.runs.types")]:
        return ModelNode.of(await info.context.loaders.require(Run, decode_id(self.run_id, "Run")))


@strawberry.type(name="Deposit")
class DepositType(ModelNode):
    model = Deposit
    id: relay.NodeID[str]
    amount_cents: int
    status: DepositStatus = strawberry.field(description="SUCCEEDED once Stripe's signed webhook credited the cash.")
    created_at: datetime
    completed_at: datetime | None
    user_id: strawberry.Private[str]

    @classmethod
    def from_model(cls, row: Deposit) -> DepositType:
        return cls(id=str(row.id), amount_cents=row.amount_cents, status=DepositStatus(row.status),
                   created_at=row.created_at, completed_at=row.completed_at, user_id=str(row.user_id))

    @classmethod
    def visible(cls, info: Info, row: Deposit) -> bool:
        viewer = info.context.user
        return viewer is not None and (str(viewer.id) == str(row.user_id) or viewer.is_admin)


@strawberry.type(name="LedgerPosting")
class LedgerPostingType:
    account: str
    amount_cents: int


@strawberry.type(name="LedgerEntry", description="A ledger transaction as seen from some accounts.")
class LedgerEntryType:
    id: strawberry.ID
    kind: LedgerKind
    memo: str
    amount_cents: int = strawberry.field(description="Net change of the accounts in question (negative: out).")
    postings: list[LedgerPostingType] = strawberry.field(description="The lines on the accounts in question.")
    created_at: datetime


# ---- typed errors of the payloads ------------------------------------------------------------


@strawberry.type(name="InsufficientFunds")
class InsufficientFundsError(Error):
    required_cents: int
    available_cents: int


@strawberry.type(name="PaymentsNotConfigured")
class PaymentsNotConfiguredError(Error):
    pass


@converts(InsufficientFunds)
def _insufficient(err: InsufficientFunds) -> InsufficientFundsError:
    return InsufficientFundsError(message=err.message, code=err.code, required_cents=err.required_cents,
                                  available_cents=err.available_cents)


@converts(PaymentsNotConfigured)
def _not_configured(err: PaymentsNotConfigured) -> PaymentsNotConfiguredError:
    return PaymentsNotConfiguredError(message=err.message, code=err.code)
