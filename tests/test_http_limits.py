"""HTTP and websocket limits: body size (413), JSON nesting (400), short error echoes, and the
cap on subscriptions per websocket connection."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from app.api.http_limits import MAX_BODY_BYTES, MAX_JSON_DEPTH, MAX_SUBSCRIPTIONS_PER_CONNECTION
from tests.helpers import eventually
from tests.ws import SubscriptionError, WsClient

BOARD = "subscription { jobsBoard { at } }"


async def test_a_body_over_one_mebibyte_is_refused_unread(api: str) -> None:
    padding = "x" * MAX_BODY_BYTES
    body = json.dumps({"query": "{ viewer { id } }", "variables": {"pad": padding}})
    async with httpx.AsyncClient(base_url=api) as http:
        response = await http.post("/graphql", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 413

        async def chunks():  # no Content-Length: counted while it streams
            for i in range(0, len(body), 65536):
                yield body[i:i + 65536].encode()

        response = await http.post("/graphql", content=chunks(), headers={"Content-Type": "application/json"})
        assert response.status_code == 413
        small = await http.post("/graphql", json={"query": "{ viewer { id } }"})
        assert small.status_code == 200


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5000, 200_000])
async def test_deeply_nested_json_is_a_400_not_a_500(api: str, depth: int) -> None:
    nested = "[" * depth + "]" * depth
    body = '{"query": "{ viewer { id } }", "variables": {"v": ' + nested + "}}"
    async with httpx.AsyncClient(base_url=api) as http:
        response = await http.post("/graphql", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "nested deeper" in response.text


async def test_nesting_within_the_limit_is_accepted(api: str) -> None:
    depth = MAX_JSON_DEPTH - 2  # the body and `variables` are two levels
    body = '{"query": "{ viewer { id } }", "variables": {"v": ' + "[" * depth + "]" * depth + "}}"
    async with httpx.AsyncClient(base_url=api) as http:
        response = await http.post("/graphql", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text


async def test_unknown_names_are_echoed_only_as_a_short_prefix(client) -> None:
    name = "f" + "x" * 200_000
    body = await client.execute("{ " + name + " }")
    message = body["errors"][0]["message"]
    assert len(message) <= 301 and message.endswith("…")
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_subscriptions_per_connection_are_capped(api: str) -> None:
    ws = await WsClient.connect(api)
    try:
        streams = [ws.subscribe(BOARD) for _ in range(MAX_SUBSCRIPTIONS_PER_CONNECTION)]
        for stream in streams:
            assert "jobsBoard" in await anext(stream)
        extra = ws.subscribe(BOARD)
        with pytest.raises(SubscriptionError) as refused:
            await anext(extra)
        assert refused.value.errors[0]["message"] == "Subscription limit reached"
        await ws.conn.send(json.dumps({"id": "1", "type": "complete"}))  # the client ends one of them

        async def another() -> object:
            try:
                return await anext(ws.subscribe(BOARD))
            except SubscriptionError as exc:
                return exc.errors

        # The connection stayed open, and the freed slot is usable again.
        assert "jobsBoard" in await eventually(another, lambda r: isinstance(r, dict), within=10)
    finally:
        await ws.close()


async def test_subscription_arguments_pass_the_input_policy(api: str) -> None:
    ws = await WsClient.connect(api)
    try:
        for query in ('subscription { jobLogs(jobId: "Sm9iOjE=", tail: 999999) { seq } }',
                      'subscription { runUpdates(runId: "a\\u0000b") { __typename } }'):
            with pytest.raises(SubscriptionError) as refused:
                await anext(ws.subscribe(query))
            assert refused.value.errors[0]["extensions"]["code"] == "BAD_USER_INPUT", refused.value.errors
    finally:
        await ws.close()


async def test_numbers_too_long_to_convert_are_refused_not_internal_errors(client, api: str) -> None:
    # Python refuses to turn more than 4300 digits into an int: in the document that was an
    # internal error in validation, in the JSON body a 500.
    body = await client.execute("{ projects(first: " + "1" * 5000 + ") { nodes { id } } }")
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "Number literal longer than" in body["errors"][0]["message"]
    raw = '{"query": "query($n: Int) { projects(first: $n) { nodes { id } } }", "variables": {"n": ' + "1" * 5000 + "}}"
    async with httpx.AsyncClient(base_url=api) as http:
        response = await http.post("/graphql", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400


MALFORMED = [[1, 2], "text", {"type": 5}, {"type": "subscribe", "id": "1", "payload": "x"},
             {"type": "subscribe", "id": "1", "payload": {"query": 123}}, {"type": "subscribe", "id": 7},
             {"type": "complete"}]


@pytest.mark.parametrize(("protocol", "code"), [("graphql-transport-ws", 4400), ("graphql-ws", 1002)])
async def test_malformed_websocket_messages_close_with_a_protocol_code(api: str, protocol: str, code: int) -> None:
    import websockets

    url = api.replace("http://", "ws://") + "/graphql"
    for message in [*MALFORMED, *([{"type": "start", "id": "1", "payload": 5}, {"type": "stop"}]
                                  if protocol == "graphql-ws" else [])]:
        async with websockets.connect(url, subprotocols=[protocol]) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            await ws.send(json.dumps(message))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:  # legacy graphql-ws may send keep-alives first
                    await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == code, (message, closed.value)
