from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import relay

from app.accounts.models import User
from app.api.compiled import Nested, ToOne, reads
from app.api.context import Info
from app.api.discussions.loaders import project_discussions
from app.api.funding.loaders import ledger_page
from app.api.nodes import Column, ModelNode, RowFields
from app.api.notifications.loaders import viewer_follows
from app.api.pagination import Connection
from app.api.projects.stats import ProjectStats, stats
from app.api.revisions.loaders import history
from app.api.runs.loaders import project_runs, project_runs_page
from app.funding import ledger
from app.projects.models import Project
from app.revisions.markdown import render_markdown

if TYPE_CHECKING:
    from app.api.accounts.types import UserType
    from app.api.discussions.types import DiscussionType
    from app.api.funding.types import LedgerEntryType
    from app.api.revisions.types import RevisionType
    from app.api.runs.types import RunOrder, RunStatus, RunType

# Other domains' types, resolved by strawberry when the schema is built (this module imports none).
UserRef = Annotated["UserType", strawberry.lazy("app.api.accounts.types")]
RevisionRef = Annotated["RevisionType", strawberry.lazy("app.api.revisions.types")]


PROJECT_FIELDS: dict[str, Callable[[Project], Any]] = {
    "id": Column("id", str),
    **{name: Column(name) for name in (
        "title", "git_url", "notes", "notes_version", "balance_cents", "created_at", "updated_at")},
    "owner_id": Column("owner_id", str),
}


@strawberry.type(name="Project")
class ProjectType(RowFields, ModelNode):
    model = Project
    row_fields = PROJECT_FIELDS
    id: relay.NodeID[str]
    title: str
    git_url: str
    notes: str = strawberry.field(description="The lab notebook, Markdown as written.")
    notes_version: int
    balance_cents: int = strawberry.field(description="Surplus kept by the project (`TO_PROJECT` fundings).")
    created_at: datetime
    updated_at: datetime
    owner_id: strawberry.Private[str]

    @strawberry.field(description="The notes rendered to sanitised HTML.")
    def notes_html(self) -> str:
        return render_markdown(self.notes)

    @strawberry.field
    @reads(ToOne("owner_id"))
    async def owner(self, info: Info) -> UserRef:
        return ModelNode.of(await info.context.loaders.require(User, self.owner_id))

    @strawberry.field(description="Whether the signed-in caller follows the project (false when anonymous).")
    async def viewer_is_following(self, info: Info) -> bool:
        return await viewer_follows(info, self.id)

    @strawberry.field(description="Runs by status, money raised and spent, followers.")
    async def stats(self, info: Info) -> ProjectStats:
        return await stats(info, self.id)

    @strawberry.field(description="The project's runs, newest first by default.")
    @reads(Nested(project_runs_page))
    async def runs(
        self,
        info: Info,
        status: Annotated[RunStatus, strawberry.lazy("app.api.runs.types")] | None = None,
        first: int | None = None,
        after: str | None = None,
        order_by: Annotated[RunOrder, strawberry.lazy("app.api.runs.types")] | None = None,
    ) -> Connection[Annotated[RunType, strawberry.lazy("app.api.runs.types")]]:
        return await project_runs(info, self.id, status, first, after, order_by)

    @strawberry.field(description="Movements of the project balance (surplus in, owner fundings out), newest first.")
    async def transactions(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Annotated[LedgerEntryType, strawberry.lazy("app.api.funding.types")]]:
        return await ledger_page(info, [ledger.project_balance(self.id)], first, after)

    @strawberry.field(description="Notes revisions, newest first; page to older ones with `after`.")
    async def notes_history(self, info: Info, first: int | None = None, after: str | None = None,
                            last: int | None = None, before: str | None = None) -> Connection[RevisionRef]:
        return await history(info, "project", self.id, first=first, after=after, last=last, before=before)

    @strawberry.field(description="Pinned first, then by latest activity.")
    async def discussions(
        self, info: Info, first: int | None = None, after: str | None = None, last: int | None = None,
        before: str | None = None,
    ) -> Connection[Annotated[DiscussionType, strawberry.lazy("app.api.discussions.types")]]:
        return await project_discussions(info, self.id, first, after, last, before)
