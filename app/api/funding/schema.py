"""Money API: admin credit grants and card deposits (fundRun lives with runs)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.accounts.models import User
from app.api.accounts.types import UserType
from app.api.context import Info
from app.api.errors import ValidationFailed, typed_errors
from app.api.funding.types import BalanceType, DepositType, PaymentsNotConfiguredError
from app.core.settings import get_settings
from app.funding import deposits, wallets


@strawberry.input
class GrantCreditInput:
    user_id: strawberry.ID
    amount_cents: int
    reason: str = strawberry.field(description="Why (promotion, compensation…); recorded in the ledger memo.")


@strawberry.type
class GrantCreditSuccess:
    user: UserType
    balance: BalanceType


@strawberry.input
class CreateDepositInput:
    amount_cents: int


@strawberry.type
class CreateDepositSuccess:
    deposit: DepositType
    client_secret: str = strawberry.field(description="Confirm the PaymentIntent with Stripe.js using this secret.")
    publishable_key: str | None = strawberry.field(description="The Stripe publishable key for Stripe.js.")


GrantCreditPayload = Annotated[GrantCreditSuccess | ValidationFailed, strawberry.union("GrantCreditPayload")]
CreateDepositPayload = Annotated[
    CreateDepositSuccess | ValidationFailed | PaymentsNotConfiguredError, strawberry.union("CreateDepositPayload")
]


@strawberry.type
class FundingMutation:
    @strawberry.mutation(description="Administrators only: add promotional credit to a user's wallet.")
    @typed_errors
    async def grant_credit(self, info: Info, input: GrantCreditInput) -> GrantCreditPayload:
        admin = info.context.require_admin()
        user = await info.context.loaders.node(User, input.user_id, "User")
        await wallets.grant_credit(user.id, input.amount_cents, input.reason, granted_by=f"@{admin.handle}")
        return GrantCreditSuccess(user=UserType.from_model(user), balance=await BalanceType.for_user(user.id))

    @strawberry.mutation(description="Human only: start a card deposit. The cash arrives with Stripe's webhook.")
    @typed_errors
    async def create_deposit(self, info: Info, input: CreateDepositInput) -> CreateDepositPayload:
        user = info.context.require_human()
        deposit, client_secret = await deposits.create_deposit(user, input.amount_cents)
        return CreateDepositSuccess(deposit=DepositType.from_model(deposit), client_secret=client_secret,
                                    publishable_key=get_settings().stripe_publishable_key or None)
