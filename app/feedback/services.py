"""Feedback to the platform team: bug reports, feature requests, questions."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable

from tortoise.queryset import QuerySet

from app.accounts.models import User
from app.core import limits
from app.core.errors import ValidationError
from app.feedback.models import Feedback

TITLE_MAX = limits.TITLE
DESCRIPTION_MAX = limits.FEEDBACK


class FeedbackKind(enum.StrEnum):
    BUG = "BUG"
    FEATURE = "FEATURE"
    QUESTION = "QUESTION"


async def submit(user: User, *, type: FeedbackKind, title: str, description: str,
                 admit: Callable[[], Awaitable[None]] | None = None) -> Feedback:
    """`admit` (the rate limit) runs after validation, so a rejected draft costs no quota."""
    title, description = title.strip(), description.strip()
    errors: dict[str, str] = {}
    if not (1 <= len(title) <= TITLE_MAX):
        errors["title"] = f"1-{TITLE_MAX} characters"
    if not (1 <= len(description) <= DESCRIPTION_MAX):
        errors["description"] = f"1-{DESCRIPTION_MAX} characters"
    if errors:
        raise ValidationError(errors)
    if admit is not None:
        await admit()
    return await Feedback.create(user=user, type=type.value, title=title, description=description)


def everything() -> QuerySet[Feedback]:
    return Feedback.all()
