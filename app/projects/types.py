from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import relay

from app.accounts.models import User
from app.accounts.types import UserType
from app.api.context import Info
from app.api.nodes import ModelNode
from app.projects.models import Project
from app.revisions.markdown import render_markdown


@strawberry.type(name="Project")
class ProjectType(ModelNode):
    model = Project
    id: relay.NodeID[str]
    title: str
    git_url: str
    notes: str = strawberry.field(description="The lab notebook, Markdown as written.")
    notes_version: int
    balance_cents: int = strawberry.field(description="Surplus kept by the project (`TO_PROJECT` fundings).")
    created_at: datetime
    updated_at: datetime
    owner_id: strawberry.Private[str]

    @classmethod
    def from_model(cls, row: Project) -> ProjectType:
        return cls(
            id=str(row.id), title=row.title, git_url=row.git_url, notes=row.notes, notes_version=row.notes_version,
            balance_cents=row.balance_cents, created_at=row.created_at, updated_at=row.updated_at,
            owner_id=str(row.owner_id),
        )

    @strawberry.field(description="The notes rendered to sanitised HTML.")
    def notes_html(self) -> str:
        return render_markdown(self.notes)

    @strawberry.field
    async def owner(self, info: Info) -> UserType:
        user = await info.context.loaders.get(User, self.owner_id)
        assert user is not None  # RESTRICT foreign key
        return UserType.from_model(user)
