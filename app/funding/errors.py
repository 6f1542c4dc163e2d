"""Typed money errors: raised by the services, returned as GraphQL result types."""

from __future__ import annotations

import strawberry

from app.api.errors import Error, converts
from app.core.errors import DomainError, ErrorCode


class InsufficientFunds(DomainError):
    code = ErrorCode.INSUFFICIENT_FUNDS

    def __init__(self, required_cents: int, available_cents: int, source: str = "wallet") -> None:
        super().__init__(f"Insufficient funds: {required_cents} cents required, {available_cents} available in "
                         f"the {source}.")
        self.required_cents = required_cents
        self.available_cents = available_cents


class PaymentsNotConfigured(DomainError):
    code = ErrorCode.PAYMENTS_NOT_CONFIGURED

    def __init__(self) -> None:
        super().__init__("Card payments are not configured on this platform (no Stripe keys).")


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
