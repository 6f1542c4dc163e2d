"""Batched account reads for lists of users: their API keys in one statement."""

from __future__ import annotations

from app.accounts.models import ApiKey
from app.api.context import Info


async def api_keys(info: Info, user_id: str) -> list[ApiKey]:
    """`User.apiKeys`: newest first."""
    return await info.context.loaders.children(ApiKey, "user_id", user_id, "-created_at")
