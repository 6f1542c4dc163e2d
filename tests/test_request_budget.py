"""The request budget on /graphql holds across two API processes: per API key, and per IP for
anonymous clients; over it, HTTP 429 with Retry-After and a RATE_LIMITED GraphQL error that says
when to retry. Other clients keep their own budget."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import websockets

from app.api.next_steps import GRAPHQL
from tests.api_process import replica_env, replica_pair

PER_KEY, PER_IP = 5, 3
QUERY = {"query": "{ viewer { handle } }"}


@pytest.fixture(scope="module")
async def replicas(settings, work_dir: Path) -> AsyncIterator[tuple[str, str]]:
    env = replica_env(settings) | {"REQUESTS_PER_MINUTE": str(PER_KEY), "ANONYMOUS_REQUESTS_PER_MINUTE": str(PER_IP)}
    async with replica_pair(env, work_dir, "budget") as urls:
        yield urls


def from_own_address() -> httpx.AsyncHTTPTransport:
    """Requests from a loopback address of their own: an IP budget no other test shares."""
    return httpx.AsyncHTTPTransport(local_address=f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.1")


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    wait = int(response.headers["Retry-After"])
    [error] = response.json()["errors"]
    assert 0 < wait <= 60 and error["extensions"] == {
        "code": "RATE_LIMITED", "retryAfterSeconds": wait, "retryAfter": wait,
        "recommendedAction": GRAPHQL["RATE_LIMITED"]}


async def test_budget_per_api_key_across_replicas(replicas, make_person) -> None:
    busy, other = await make_person("budget"), await make_person("budget-other")
    transport = from_own_address()
    async with httpx.AsyncClient(transport=transport, headers={"Authorization": f"Bearer {busy.api_key}"}) as http:
        for i in range(PER_KEY):
            answer = await http.post(f"{replicas[i % 2]}/graphql", json=QUERY)
            assert answer.status_code == 200 and answer.json()["data"]["viewer"]["handle"] == busy.handle
        for url in replicas:
            assert_refused(await http.post(f"{url}/graphql", json=QUERY))
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {other.api_key}"}) as http:
        answer = await http.post(f"{replicas[1]}/graphql", json=QUERY)
        assert answer.status_code == 200 and answer.json()["data"]["viewer"]["handle"] == other.handle


async def test_budget_per_ip_for_anonymous_clients(replicas) -> None:
    async with httpx.AsyncClient(transport=from_own_address()) as http:
        for i in range(PER_IP):
            answer = await http.post(f"{replicas[i % 2]}/graphql", json=QUERY)
            assert answer.status_code == 200 and answer.json()["data"] == {"viewer": None}
        assert_refused(await http.post(f"{replicas[0]}/graphql", json=QUERY))
        health = await http.get(f"{replicas[0]}/health")  # only /graphql and downloads are budgeted
        assert health.status_code == 200


async def test_artifact_downloads_share_the_budget(replicas) -> None:
    """Each download makes MLflow read a file: it counts like a request, in the same budget."""
    missing = f"/artifacts/{uuid.uuid4()}/model.pt"
    async with httpx.AsyncClient(transport=from_own_address()) as http:
        for i in range(PER_IP):
            assert (await http.get(f"{replicas[i % 2]}{missing}")).status_code == 404
        refused = await http.get(f"{replicas[0]}{missing}")
        assert refused.status_code == 429
        wait = int(refused.headers["Retry-After"])
        assert refused.json() == {"code": "RATE_LIMITED", "message": refused.json()["message"], "retryAfterSeconds": wait}
        assert_refused(await http.post(f"{replicas[1]}/graphql", json=QUERY))


async def test_websocket_connections_count_too(replicas) -> None:
    """A refused handshake is an HTTP 429 with Retry-After, like a refused request."""
    address = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.2"
    url = replicas[0].replace("http://", "ws://") + "/graphql"
    for _ in range(PER_IP):
        async with websockets.connect(url, subprotocols=["graphql-transport-ws"], local_addr=(address, 0)):
            pass
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(url, subprotocols=["graphql-transport-ws"], local_addr=(address, 0))
    assert refused.value.response.status_code == 429
    assert 0 < int(refused.value.response.headers["Retry-After"]) <= 60
