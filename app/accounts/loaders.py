"""Batched account reads for lists of users: their API keys in one statement."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from app.accounts.models import ApiKey
from app.api.context import Info


async def _api_keys(user_ids: Sequence[str]) -> list[list[ApiKey]]:
    by_user: dict[str, list[ApiKey]] = defaultdict(list)
    for row in await ApiKey.filter(user_id__in=list(user_ids)).order_by("user_id", "-created_at"):
        by_user[str(row.user_id)].append(row)
    return [by_user[u] for u in user_ids]


async def api_keys(info: Info, user_id: str) -> list[ApiKey]:
    """`User.apiKeys`: newest first."""
    return await info.context.loaders.batch("User.apiKeys", _api_keys).load(str(user_id))
