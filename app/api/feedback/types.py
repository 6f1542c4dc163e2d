from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import relay

from app.accounts.models import User
from app.api.context import Info
from app.api.nodes import ModelNode
from app.feedback.models import Feedback
from app.feedback.services import FeedbackKind

if TYPE_CHECKING:
    from app.api.accounts.types import UserType

FeedbackTypeEnum = strawberry.enum(FeedbackKind, name="FeedbackType")


@strawberry.type(name="Feedback")
class FeedbackType(ModelNode):
    model = Feedback
    id: relay.NodeID[str]
    type: FeedbackTypeEnum  # type: ignore[valid-type]
    title: str
    description: str
    created_at: datetime
    user_id: strawberry.Private[str]

    @classmethod
    def from_model(cls, row: Feedback) -> FeedbackType:
        return cls(id=str(row.id), type=FeedbackKind(row.type), title=row.title, description=row.description,
                   created_at=row.created_at, user_id=str(row.user_id))

    @classmethod
    def visible(cls, info: Info, row: Feedback) -> bool:
        viewer = info.context.user
        return viewer is not None and (viewer.is_admin or str(viewer.id) == str(row.user_id))

    @strawberry.field
    async def user(self, info: Info) -> Annotated[UserType, strawberry.lazy("app.api.accounts.types")] | None:
        row = await info.context.loaders.get(User, self.user_id)
        return ModelNode.of(row) if row else None
