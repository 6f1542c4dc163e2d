"""`viewerNotifications`: the signed-in user's new notifications and unread count, live."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry.scalars import JSON

from app.api.context import Info
from app.api.ids import decode_id
from app.api.notifications.types import NotificationType
from app.events import streams
from app.notifications import services
from app.notifications.models import Notification


@strawberry.type
class NotificationUpdate:
    seq: int = strawberry.field(description="Position in your stream; resume with afterSeq.")
    kind: str = strawberry.field(description="snapshot, notification or read")
    payload: JSON
    notification: NotificationType | None
    unread_count: int


@strawberry.type
class NotificationsSubscription:
    @strawberry.subscription(description="Private: a snapshot of the unread count, then each new notification "
                                         "or read-marking. Needs credentials in connection_init or a cookie.")
    async def viewer_notifications(self, info: Info,
                                   after_seq: int | None = None) -> AsyncGenerator[NotificationUpdate, None]:
        user = info.context.require_user()
        stream = f"user:{user.id}"
        position = info.context.position
        after_seq = position.start(after_seq)
        start = after_seq if after_seq is not None else await streams.last_event_seq(stream)
        if after_seq is None:
            position.seq = start
            yield NotificationUpdate(seq=start, kind="snapshot", payload=JSON({}), notification=None,
                                     unread_count=await services.unread_count(user.id))
        async for event in streams.follow(info.context.hub, [stream], lambda a, n: streams.events_after(stream, a, n),
                                          lambda e: e.seq, start, position=position):
            row = None
            if event.kind == "notification":
                row = await Notification.get_or_none(id=decode_id(event.payload["id"], "Notification"))
            yield NotificationUpdate(
                seq=event.seq, kind=event.kind, payload=JSON(event.payload),
                notification=NotificationType.from_model(row) if row else None,
                unread_count=await services.unread_count(user.id),
            )
