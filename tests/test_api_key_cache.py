"""API key lookups are cached per process for API_KEY_CACHE_SECONDS: a revoked key is refused at
once by the process that revoked it and by every other process within that bound."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.api_process import ApiProcess, replica_env
from tests.client import GraphQLClient

VIEWER = "{ viewer { handle } }"
KEYS = "{ viewer { apiKeys { id name revokedAt } } }"
REVOKE = "mutation($i: RevokeApiKeyInput!) { revokeApiKey(input: $i) { apiKey { revokedAt } } }"


async def refused(client: GraphQLClient) -> bool:
    body = await client.execute(VIEWER)
    return bool(body.get("errors")) and body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_revoked_key_is_refused_everywhere_within_the_documented_bound(api: str, settings, work_dir: Path,
                                                                             make_person) -> None:
    bound = settings.api_key_cache_seconds
    assert 0 < bound <= 60
    person = await make_person("cache")
    other = ApiProcess(replica_env(settings), work_dir / "api-key-cache.log")
    try:
        await asyncio.to_thread(other.wait_ready)
        async with GraphQLClient(other.url, person.api_key) as elsewhere:
            # Used on both processes: each holds the lookup in its cache now.
            assert (await elsewhere.data(VIEWER))["viewer"]["handle"] == person.handle
            assert (await person.agent.data(VIEWER))["viewer"]["handle"] == person.handle
            [key] = (await person.web.data(KEYS))["viewer"]["apiKeys"]
            await person.web.data(REVOKE, {"i": {"id": key["id"]}})
            revoked_at = time.monotonic()
            assert await refused(person.agent)  # the revoking process forgets the key at once
            while not await refused(elsewhere):
                assert time.monotonic() - revoked_at <= bound + 1.0, "still accepted past the bound"
                await asyncio.sleep(0.1)
            assert await refused(elsewhere)  # and stays refused
    finally:
        other.stop()
