"""Feedback API: anyone signed in submits (10/day); admins read."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.api import ratelimit
from app.api.context import Info
from app.api.errors import ValidationFailed, typed_errors
from app.api.feedback.types import FeedbackType, FeedbackTypeEnum
from app.api.pagination import Connection, paginate
from app.core.settings import get_settings
from app.feedback import services
from app.feedback.services import FeedbackKind


@strawberry.type
class FeedbackQuery:
    @strawberry.field(description="Admins only: submitted feedback, newest first.")
    async def feedback(
        self, info: Info, first: int | None = None, after: str | None = None,
    ) -> Connection[FeedbackType]:
        info.context.require_admin()
        return await paginate(services.everything(), FeedbackType.from_model, first=first, after=after)


@strawberry.input
class SubmitFeedbackInput:
    type: FeedbackTypeEnum  # type: ignore[valid-type]
    title: str
    description: str


@strawberry.type
class SubmitFeedbackSuccess:
    feedback: FeedbackType


SubmitFeedbackPayload = Annotated[SubmitFeedbackSuccess | ValidationFailed, strawberry.union("SubmitFeedbackPayload")]


@strawberry.type
class FeedbackMutation:
    @strawberry.mutation(description="Report a bug, request a feature or ask a question. Rate limited: 10/day.")
    @typed_errors
    async def submit_feedback(self, info: Info, input: SubmitFeedbackInput) -> SubmitFeedbackPayload:
        user = info.context.require_user()

        async def admit() -> None:
            await ratelimit.hit(info.context.require_services(), "feedback", str(user.id),
                                get_settings().feedback_per_day, 86400)

        row = await services.submit(user, type=FeedbackKind(input.type), title=input.title,
                                    description=input.description, admit=admit)
        return SubmitFeedbackSuccess(feedback=FeedbackType.from_model(row))
