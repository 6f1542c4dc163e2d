from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from app.api.context import Info
from app.api.nodes import ModelNode
from app.notifications.models import Notification, NotificationKind
from app.notifications.services import Preference
from app.projects.models import Project

if TYPE_CHECKING:
    from app.api.projects.types import ProjectType

NotificationKindEnum = strawberry.enum(NotificationKind, name="NotificationKind")


@strawberry.type(name="Notification")
class NotificationType(ModelNode):
    model = Notification
    id: relay.NodeID[str]
    kind: NotificationKindEnum  # type: ignore[valid-type]
    message: str
    payload: JSON = strawberry.field(description="Kind-specific details; ids in it are global ids.")
    read_at: datetime | None
    created_at: datetime
    user_id: strawberry.Private[str]
    project_id: strawberry.Private[str | None]

    @classmethod
    def from_model(cls, row: Notification) -> NotificationType:
        return cls(
            id=str(row.id), kind=NotificationKind(row.kind), message=row.message, payload=JSON(row.payload),
            read_at=row.read_at, created_at=row.created_at, user_id=str(row.user_id),
            project_id=str(row.project_id) if row.project_id else None,
        )

    @classmethod
    def visible(cls, info: Info, row: Notification) -> bool:
        viewer = info.context.user
        return viewer is not None and str(viewer.id) == str(row.user_id)

    @strawberry.field
    def is_read(self) -> bool:
        return self.read_at is not None

    @strawberry.field
    async def project(self, info: Info) -> Annotated[ProjectType, strawberry.lazy("app.api.projects.types")] | None:
        row = await info.context.loaders.get(Project, self.project_id) if self.project_id else None
        return ModelNode.of(row) if row else None


@strawberry.type(name="NotificationPreference")
class NotificationPreferenceType:
    kind: NotificationKindEnum  # type: ignore[valid-type]
    in_app: bool
    email: bool

    @classmethod
    def from_preference(cls, pref: Preference) -> NotificationPreferenceType:
        return cls(kind=pref.kind, in_app=pref.in_app, email=pref.email)
