"""`Query.runs`: runs of every project, for patrons looking for something to fund."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.api.context import Info
from app.api.errors import BadInput
from app.api.ids import decode_id
from app.api.pagination import Connection, paginate
from app.runs.discovery import SEARCH_MAX, DiscoveryOrder, discover
from app.runs.models import RunStatus
from app.runs.types import RunType

RunDiscoveryOrder = strawberry.enum(DiscoveryOrder, name="RunDiscoveryOrder", description=(
    "NEWEST: newest first. SMALLEST_GAP: closest to starting (smallest remaining funding gap) first. "
    "LARGEST_FUNDED_SHARE: largest share of the estimate already funded first."))


@strawberry.type
class RunDiscoveryQuery:
    @strawberry.field(description="Runs of every project (public). Without arguments: the runs awaiting funding, "
                                  "newest first. Pass `status: null` for every status.")
    async def runs(
        self, info: Info, first: int | None = None, after: str | None = None, last: int | None = None,
        before: str | None = None, status: RunStatus | None = RunStatus.AWAITING_FUNDING,
        project_id: strawberry.ID | None = None,
        search: Annotated[str | None, strawberry.argument(description="Words of the run's title or notes, its "
                                                          "project's title, or the researcher's handle.")] = None,
        order_by: DiscoveryOrder = DiscoveryOrder.NEWEST,
    ) -> Connection[RunType]:
        text = search.strip() if search else None
        if text and len(text) > SEARCH_MAX:
            raise BadInput(f"`search` is at most {SEARCH_MAX} characters.")
        qs = discover(status=status, project_id=decode_id(project_id, "Project") if project_id else None,
                      text=text, order=order_by)
        return await paginate(qs, RunType.from_model, first=first, after=after, last=last, before=before,
                              sort=order_by.value)
