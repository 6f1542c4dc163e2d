"""Money errors the services raise; `app/api/funding/types.py` turns them into the payloads' typed errors."""

from __future__ import annotations

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
