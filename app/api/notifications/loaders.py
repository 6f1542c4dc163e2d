"""Batched notification reads for lists: which projects of a page the viewer follows."""

from __future__ import annotations

from collections.abc import Sequence

from app.api.context import Info
from app.notifications.models import ProjectSubscription


async def viewer_follows(info: Info, project_id: str) -> bool:
    """`Project.viewerIsFollowing`: one query for every project of the page (false when anonymous)."""
    user = info.context.user
    if user is None:
        return False

    async def load(project_ids: Sequence[str]) -> list[bool]:
        followed = {str(p) for p in await ProjectSubscription.filter(user_id=user.id, project_id__in=list(project_ids))
                    .values_list("project_id", flat=True)}
        return [p in followed for p in project_ids]

    return await info.context.loaders.batch("Project.viewerIsFollowing", load).load(str(project_id))
