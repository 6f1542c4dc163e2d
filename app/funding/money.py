"""Pure money arithmetic: amount validation and cent-exact pro-rata splits."""

from __future__ import annotations

from collections.abc import Sequence

from app.core import limits
from app.core.errors import ValidationError

MAX_AMOUNT_CENTS = limits.MAX_CENTS  # $100,000: one funding, grant or deposit


def validate_amount(amount_cents: int, *, field: str = "amountCents", minimum: int = 1,
                    maximum: int = MAX_AMOUNT_CENTS) -> int:
    """A whole number of cents in [minimum, maximum]; ValidationFailed otherwise."""
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int):
        raise ValidationError({field: "must be a whole number of cents"})
    if not minimum <= amount_cents <= maximum:
        # Worded in dollars: people type amounts in dollars, agents read `field` and the limits.
        raise ValidationError({field: f"must be between {dollars(minimum)} and {dollars(maximum)}"})
    return amount_cents


def dollars(cents: int) -> str:
    """1234567 → "$12,345.67"."""
    return f"${cents / 100:,.2f}"


def largest_remainder(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` cents in proportion to `weights`; the parts always sum to exactly `total`.

    Each part is floor(total * w / W); the cents left over go one each to the largest
    fractional remainders, ties to the earliest weight, so the split is deterministic.
    """
    if total < 0 or any(w < 0 for w in weights):
        raise ValueError("total and weights must be non-negative")
    whole = sum(weights)
    if whole == 0:
        if total:
            raise ValueError("cannot split a non-zero total over zero weights")
        return [0] * len(weights)
    parts = [total * w // whole for w in weights]
    remainders = [total * w % whole for w in weights]
    leftover = total - sum(parts)
    for i in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:leftover]:
        parts[i] += 1
    return parts
