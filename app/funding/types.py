from __future__ import annotations

import strawberry

from app.funding.models import Wallet


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
