"""Cost maths: the dryrun's wall time scaled to the full run, priced by the machine's hourly rate.

Shown to patrons with every input (`estimate_detail`), so they can check it by hand.
"""

from __future__ import annotations

import math
from typing import Any

from app.catalog.catalog import MachineType


class EstimateTooLarge(Exception):
    """The full run would take longer or cost more than the platform accepts (the message says which)."""


def estimate(
    *, dryrun_seconds: float, dryrun_value: float, full_value: float, startup_overhead_seconds: int,
    machine: MachineType, spot: bool, max_seconds: int, max_cents: int,
) -> tuple[int, int, dict[str, Any]]:
    """Return (cost cents, duration seconds, detail). Rounded up: an estimate never undercharges.

    Checked against `max_seconds` / `max_cents` in floating point before anything is rounded
    or stored, so a huge scale (1e15 epochs) cannot overflow a column: EstimateTooLarge."""
    ratio = full_value / dryrun_value
    scaled = dryrun_seconds * ratio
    if not math.isfinite(scaled) or scaled + startup_overhead_seconds > max_seconds:
        raise EstimateTooLarge(
            f"estimate refused: the dryrun's {dryrun_seconds:.1f} s scaled by {ratio:.6g} is about {scaled:.3g} s, "
            f"more than the platform's maximum of {max_seconds} s (MAX_ESTIMATE_SECONDS)")
    duration = math.ceil(scaled) + startup_overhead_seconds
    hourly = machine.hourly_cents(spot)
    cost = math.ceil(duration * hourly / 3600)
    if cost > max_cents:
        raise EstimateTooLarge(
            f"estimate refused: {duration} s at {hourly} cents/hour is {cost} cents, more than the platform's "
            f"maximum of {max_cents} cents (MAX_ESTIMATE_CENTS)")
    detail = {
        "dryrun_seconds": round(dryrun_seconds, 3),
        "dryrun_value": dryrun_value,
        "full_value": full_value,
        "scale": ratio,
        "scaled_seconds": round(scaled, 3),
        "startup_overhead_seconds": startup_overhead_seconds,
        "duration_seconds": duration,
        "machine_type": machine.machine_type,
        "spot": spot,
        "hourly_cents": hourly,
        "formula": "ceil((ceil(dryrun_seconds * full_value / dryrun_value) + overhead) * hourly_cents / 3600)",
    }
    return cost, duration, detail


def actual_cost(*, seconds: float, hourly_cents: int, escrow_cents: int) -> tuple[int, dict[str, Any]]:
    """Run time x price, never above what patrons put in escrow."""
    uncapped = math.ceil(seconds * hourly_cents / 3600)
    cost = min(uncapped, escrow_cents)
    return cost, {
        "seconds": round(seconds, 3),
        "hourly_cents": hourly_cents,
        "uncapped_cents": uncapped,
        "capped_at_escrow": uncapped > escrow_cents,
    }


def deadline_seconds(*, funded_cents: int, hourly_cents: int) -> int:
    """How long the funded budget pays for: the job's hard deadline."""
    if hourly_cents <= 0:
        return 24 * 3600
    return max(60, funded_cents * 3600 // hourly_cents)
