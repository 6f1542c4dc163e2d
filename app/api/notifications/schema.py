"""Notifications API: the viewer's notifications, read state, preferences, follows, unsubscribe."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.api.context import Info
from app.api.errors import NotFound, ValidationFailed, typed_errors
from app.api.ids import decode_id
from app.api.notifications.types import NotificationKindEnum, NotificationPreferenceType, NotificationType
from app.api.pagination import Connection, paginate
from app.api.projects.types import ProjectType
from app.notifications import services
from app.notifications.models import NotificationKind
from app.projects.models import Project


@strawberry.type
class NotificationsQuery:
    @strawberry.field(description="The viewer's notifications, newest first.")
    async def notifications(
        self, info: Info, first: int | None = None, after: str | None = None, is_read: bool | None = None,
        project_id: strawberry.ID | None = None,
    ) -> Connection[NotificationType]:
        user = info.context.require_user()
        project = decode_id(project_id, "Project") if project_id else None
        qs = services.for_user(user.id, is_read=is_read, project_id=project)
        return await paginate(qs, NotificationType.from_model, first=first, after=after)

    @strawberry.field
    async def unread_notification_count(self, info: Info) -> int:
        return await services.unread_count(info.context.require_user().id)

    @strawberry.field(description="Effective preferences for every kind (defaults included).")
    async def notification_preferences(self, info: Info) -> list[NotificationPreferenceType]:
        prefs = await services.preferences(info.context.require_user().id)
        return [NotificationPreferenceType.from_preference(p) for p in prefs]


@strawberry.input
class MarkNotificationReadInput:
    id: strawberry.ID


@strawberry.type
class MarkNotificationReadSuccess:
    notification: NotificationType


@strawberry.input
class MarkAllNotificationsReadInput:
    project_id: strawberry.ID | None = strawberry.field(default=None, description="Only this project's.")


@strawberry.type
class MarkAllNotificationsReadSuccess:
    marked_count: int


@strawberry.input
class NotificationPreferenceInput:
    kind: NotificationKindEnum  # type: ignore[valid-type]
    in_app: bool | None = strawberry.field(default=None, description="Omit to keep the current value.")
    email: bool | None = strawberry.field(default=None, description="Omit to keep the current value.")


@strawberry.input
class UpdateNotificationPreferencesInput:
    preferences: list[NotificationPreferenceInput]


@strawberry.type
class NotificationPreferencesSuccess:
    preferences: list[NotificationPreferenceType]


@strawberry.input
class FollowProjectInput:
    project_id: strawberry.ID


@strawberry.type
class FollowProjectSuccess:
    project: ProjectType
    following: bool


@strawberry.input
class UnsubscribeInput:
    token: str = strawberry.field(description="The token from the email's unsubscribe link.")
    all_kinds: bool = strawberry.field(default=False, description="Turn off email for every kind.")


@strawberry.type
class UnsubscribeSuccess:
    kind: NotificationKindEnum | None = strawberry.field(  # type: ignore[valid-type]
        description="The kind whose email was turned off; null when all kinds were."
    )


UpdateNotificationPreferencesPayload = Annotated[
    NotificationPreferencesSuccess | ValidationFailed, strawberry.union("UpdateNotificationPreferencesPayload")
]
UnsubscribePayload = Annotated[UnsubscribeSuccess | ValidationFailed, strawberry.union("UnsubscribePayload")]


@strawberry.type
class NotificationsMutation:
    @strawberry.mutation(description="Mark one of your notifications read (idempotent).")
    async def mark_notification_read(self, info: Info, input: MarkNotificationReadInput) -> MarkNotificationReadSuccess:
        user = info.context.require_user()
        row = await services.mark_read(user.id, decode_id(input.id, "Notification"))
        if row is None:
            raise NotFound("Notification")
        return MarkNotificationReadSuccess(notification=NotificationType.from_model(row))

    @strawberry.mutation
    async def mark_all_notifications_read(
        self, info: Info, input: MarkAllNotificationsReadInput | None = None,
    ) -> MarkAllNotificationsReadSuccess:
        user = info.context.require_user()
        project = decode_id(input.project_id, "Project") if input and input.project_id else None
        return MarkAllNotificationsReadSuccess(marked_count=await services.mark_all_read(user.id, project))

    @strawberry.mutation(description="Merge semantics: kinds and fields left out keep their value.")
    @typed_errors
    async def update_notification_preferences(
        self, info: Info, input: UpdateNotificationPreferencesInput,
    ) -> UpdateNotificationPreferencesPayload:
        user = info.context.require_user()
        changes = [services.PreferenceChange(NotificationKind(p.kind), p.in_app, p.email) for p in input.preferences]
        prefs = await services.update_preferences(user.id, changes)
        return NotificationPreferencesSuccess(
            preferences=[NotificationPreferenceType.from_preference(p) for p in prefs])

    @strawberry.mutation(description="Get run status changes and new discussions of a project (idempotent).")
    async def follow_project(self, info: Info, input: FollowProjectInput) -> FollowProjectSuccess:
        user = info.context.require_user()
        project = await info.context.loaders.node(Project, input.project_id, "Project")
        await services.follow(user.id, project.id)
        return FollowProjectSuccess(project=ProjectType.from_model(project), following=True)

    @strawberry.mutation
    async def unfollow_project(self, info: Info, input: FollowProjectInput) -> FollowProjectSuccess:
        user = info.context.require_user()
        project = await info.context.loaders.node(Project, input.project_id, "Project")
        await services.unfollow(user.id, project.id)
        return FollowProjectSuccess(project=ProjectType.from_model(project), following=False)

    @strawberry.mutation(description="One-click email unsubscribe from a link; needs no login.")
    @typed_errors
    async def unsubscribe(self, info: Info, input: UnsubscribeInput) -> UnsubscribePayload:
        kind = await services.unsubscribe(input.token, all_kinds=input.all_kinds)
        return UnsubscribeSuccess(kind=kind)
