"""Run discovery across projects: what patrons browse to find runs that need money.

The gap and the funded share are computed in SQL (they are not columns: a run's estimate and
funded amount change independently), with the very expressions migration 0004 indexes, so a
page is one index range scan whatever the number of runs.
"""

from __future__ import annotations

import enum
import uuid

from tortoise.expressions import Q, RawSQL
from tortoise.queryset import QuerySet

from app.runs.models import Run, RunStatus

# Keep these strings identical to the indexed expressions of migrations/0004_run_discovery.py.
GAP_SQL = "GREATEST(COALESCE(estimated_cost_cents, 0) - funded_cents, 0)"
SHARE_SQL = "(funded_cents::float8 / GREATEST(COALESCE(estimated_cost_cents, 0), 1))"

SEARCH_MAX = 200


class DiscoveryOrder(enum.Enum):
    """Sort key for `paginate` (a leading '-' is descending); ties always break on the id."""

    NEWEST = "-created_at"
    SMALLEST_GAP = "gap"
    LARGEST_FUNDED_SHARE = "-share"


def discover(*, status: RunStatus | None, project_id: uuid.UUID | None, text: str | None,
             order: DiscoveryOrder) -> QuerySet[Run]:
    """Runs of every project, filtered; `gap` / `share` annotated when the order needs them."""
    qs = Run.all()
    if order is DiscoveryOrder.SMALLEST_GAP:
        qs = qs.annotate(gap=RawSQL(GAP_SQL))
    elif order is DiscoveryOrder.LARGEST_FUNDED_SHARE:
        qs = qs.annotate(share=RawSQL(SHARE_SQL))
    if status is not None:
        qs = qs.filter(status=status.value)
    if project_id is not None:
        qs = qs.filter(project_id=project_id)
    if text:
        # What patrons type: words of the run's title or notes, its project's title, or the researcher.
        qs = qs.filter(Q(title__icontains=text) | Q(notes__icontains=text) | Q(project__title__icontains=text)
                       | Q(creator__handle__icontains=text))
    return qs
