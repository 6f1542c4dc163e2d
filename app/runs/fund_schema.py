"""The `fundRun` mutation."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.api.context import Info
from app.api.errors import Error, ValidationFailed, converts, error_payload
from app.api.ids import decode_id
from app.core.errors import DomainError
from app.funding.errors import InsufficientFundsError
from app.funding.models import SurplusPolicy
from app.funding.types import FundingType
from app.runs.fund import FundingSource, RunNotFundable, fund_run
from app.runs.types import RunStatus, RunType

strawberry.enum(FundingSource, name="FundingSource")


@strawberry.input
class FundRunInput:
    run_id: strawberry.ID
    amount_cents: int = strawberry.field(
        description="Offered amount; at most the run's funding gap is taken (see `Funding.amountCents`)."
    )
    surplus_policy: SurplusPolicy = SurplusPolicy.TO_PROJECT
    idempotency_key: str | None = strawberry.field(
        default=None, description="Retrying with the same key returns the first funding and charges once."
    )
    source: FundingSource = strawberry.field(
        default=FundingSource.WALLET, description="PROJECT_BALANCE: the project owner spends the project's balance."
    )


@strawberry.type
class FundRunSuccess:
    funding: FundingType
    run: RunType
    requested_cents: int = strawberry.field(description="The amount offered; `funding.amountCents` was taken.")
    replayed: bool = strawberry.field(description="True when an earlier call with this idempotency key answered.")


@strawberry.type(name="RunNotFundable")
class RunNotFundableError(Error):
    status: RunStatus


@converts(RunNotFundable)
def _not_fundable(err: RunNotFundable) -> RunNotFundableError:
    return RunNotFundableError(message=err.message, code=err.code, status=RunStatus(err.status))


FundRunPayload = Annotated[
    FundRunSuccess | InsufficientFundsError | RunNotFundableError | ValidationFailed, strawberry.union("FundRunPayload")
]


@strawberry.type
class FundRunMutation:
    @strawberry.mutation(description="Fund a run awaiting funding from your wallet (credit first, then cash).")
    async def fund_run(self, info: Info, input: FundRunInput) -> FundRunPayload:
        user = info.context.require_user()
        run_id = decode_id(input.run_id, "Run")
        try:
            result = await fund_run(user, run_id, input.amount_cents, input.surplus_policy, input.source,
                                    input.idempotency_key)
        except DomainError as err:
            return error_payload(err)
        return FundRunSuccess(funding=FundingType.from_model(result.funding), run=RunType.from_model(result.run),
                              requested_cents=input.amount_cents, replayed=result.replayed)
