"""Deposits against a real localstripe: PaymentIntent → card confirmation → signed webhook → cash,
exactly once; replayed, tampered, stale, unsigned and malformed webhooks move nothing."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import stripe

from app.core.settings import get_settings, override_settings
from app.funding.models import Deposit, StripeEvent
from tests.helpers import eventually
from tests.stripe_server import SECRET_KEY, LocalStripe, WebhookRecorder
from tests.test_money_support import assert_books_balance, books, wallet_of

WEBHOOK_SECRET = "whsec_mlpatron_test"
CREATE_DEPOSIT = """mutation($i: CreateDepositInput!) { createDeposit(input: $i) { __typename
  ... on CreateDepositSuccess { clientSecret deposit { id amountCents status completedAt } }
  ... on PaymentsNotConfigured { code message }
  ... on ValidationFailed { code fields { field message } } } }"""
DEPOSIT = "query($id: ID!) { node(id: $id) { ... on Deposit { status amountCents completedAt } } }"


@pytest.fixture
async def stripe_env(api: str) -> AsyncIterator[tuple[LocalStripe, WebhookRecorder]]:
    """localstripe delivering signed webhooks to the API and to a recorder (for exact replays)."""
    server = await LocalStripe().start()
    recorder = await WebhookRecorder().start()
    await server.register_webhook("mlpatron", f"{api}/webhooks/stripe", WEBHOOK_SECRET)
    await server.register_webhook("recorder", recorder.url, WEBHOOK_SECRET)
    previous = get_settings()
    override_settings(stripe_secret_key=SECRET_KEY, stripe_webhook_secret=WEBHOOK_SECRET,
                      stripe_api_base=server.api_base)
    try:
        yield server, recorder
    finally:
        override_settings(stripe_secret_key=previous.stripe_secret_key,
                          stripe_webhook_secret=previous.stripe_webhook_secret,
                          stripe_api_base=previous.stripe_api_base)
        await recorder.stop()
        await server.stop()


async def post_webhook(api: str, body: bytes, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"} | ({"Stripe-Signature": signature} if signature else {})
    async with httpx.AsyncClient(base_url=api) as http:
        return await http.post("/webhooks/stripe", content=body, headers=headers)


def sign(body: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    return stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp)


async def test_deposit_credits_cash_once_when_the_signed_webhook_arrives(api: str, make_person, stripe_env) -> None:
    server, recorder = stripe_env
    person = await make_person("depositor")
    made = (await person.web.data(CREATE_DEPOSIT, {"i": {"amountCents": 2500}}))["createDeposit"]
    assert made["__typename"] == "CreateDepositSuccess" and made["deposit"]["status"] == "PENDING"
    deposit = await Deposit.get(id=gid_to_pk(made["deposit"]["id"]))
    assert made["clientSecret"].startswith(deposit.payment_intent_id + "_secret_")
    assert await wallet_of(person.user_id) == (0, 0)  # nothing until Stripe says the money arrived

    confirmed = await server.pay(deposit.payment_intent_id)
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "succeeded"
    done = await eventually(lambda: person.web.data(DEPOSIT, {"id": made["deposit"]["id"]}),
                            lambda d: d["node"]["status"] == "SUCCEEDED", within=20)
    assert done["node"]["amountCents"] == 2500 and done["node"]["completedAt"]
    assert await wallet_of(person.user_id) == (2500, 0)
    viewer = await person.web.data("{ viewer { transactions(first: 5) { nodes { kind amountCents } } } }")
    assert viewer["viewer"]["transactions"]["nodes"] == [{"kind": "DEPOSIT", "amountCents": 2500}]

    # Replaying the exact signed delivery (a Stripe retry, or an attacker) is a no-op.
    [delivery] = await eventually(lambda: _async(recorder.of_type("payment_intent.succeeded")), bool, within=10)
    before = await books(users=[person.user_id])
    for _ in range(3):
        replay = await post_webhook(api, delivery.body, delivery.signature)
        assert replay.status_code == 200 and replay.json() == {"received": True, "applied": False}
    assert await books(users=[person.user_id]) == before
    assert await StripeEvent.filter(id=json.loads(delivery.body)["id"]).count() == 1
    await assert_books_balance()


async def test_forged_stale_and_malformed_webhooks_are_rejected(api: str, make_person, stripe_env) -> None:
    server, recorder = stripe_env
    person = await make_person("victim")
    made = (await person.web.data(CREATE_DEPOSIT, {"i": {"amountCents": 1000}}))["createDeposit"]
    deposit = await Deposit.get(id=gid_to_pk(made["deposit"]["id"]))
    # Capture the event without letting it reach the API: only the recorder listens for now.
    await server.register_webhook("mlpatron", "http://127.0.0.1:9/unreachable", WEBHOOK_SECRET)
    await server.pay(deposit.payment_intent_id)
    [delivery] = await eventually(lambda: _async(recorder.of_type("payment_intent.succeeded")), bool, within=10)
    event = json.loads(delivery.body)
    before = await books(users=[person.user_id])

    tampered = json.dumps(event | {"data": {"object": event["data"]["object"] | {"amount": 1_000_000}}}).encode()
    stale_ts = int(time.time()) - 3600
    cases = {
        "tampered body": (tampered, delivery.signature),
        "wrong secret": (delivery.body, sign(delivery.body, "whsec_not_ours")),
        "stale signature": (delivery.body, sign(delivery.body, timestamp=stale_ts)),
        "no signature": (delivery.body, None),
        "garbage signature": (delivery.body, "t=abc,v1=zzz"),
        "malformed json": (b"{not json", sign(b"{not json")),
        "not an object": (b"[1, 2]", sign(b"[1, 2]")),
        "no data": (b'{"id": "evt_x", "type": "payment_intent.succeeded"}',
                    sign(b'{"id": "evt_x", "type": "payment_intent.succeeded"}')),
        "intent without id": (json.dumps({"id": "evt_y", "type": "payment_intent.succeeded",
                                          "data": {"object": {"amount": 5}}}).encode(), None),
        "not utf-8": (b"\xff\xfe", sign(b"\xff\xfe".decode("latin-1").encode())),
    }
    cases["intent without id"] = (cases["intent without id"][0], sign(cases["intent without id"][0]))
    for name, (body, signature) in cases.items():
        response = await post_webhook(api, body, signature)
        assert response.status_code == 400, (name, response.status_code, response.text)
    assert await books(users=[person.user_id]) == before
    assert not await StripeEvent.filter(id=event["id"]).exists()

    # The genuine delivery still works afterwards, once, even when it arrives many times at once.
    answers = await asyncio.gather(*(post_webhook(api, delivery.body, delivery.signature) for _ in range(8)))
    assert sorted(r.json()["applied"] for r in answers) == [False] * 7 + [True]
    assert await wallet_of(person.user_id) == (1000, 0)
    await assert_books_balance()


async def test_a_failed_payment_credits_nothing_and_a_retry_still_can(api: str, make_person, stripe_env) -> None:
    server, _ = stripe_env
    person = await make_person("retrier")
    made = (await person.web.data(CREATE_DEPOSIT, {"i": {"amountCents": 700}}))["createDeposit"]
    deposit = await Deposit.get(id=gid_to_pk(made["deposit"]["id"]))
    # localstripe does not decline its test cards on PaymentIntents: sign the event Stripe would send.
    failed = json.dumps({"id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": "payment_intent.payment_failed",
                         "data": {"object": {"id": deposit.payment_intent_id, "object": "payment_intent",
                                             "amount": 700, "currency": "usd"}}}).encode()
    assert (await post_webhook(api, failed, sign(failed))).json() == {"received": True, "applied": True}
    assert (await person.web.data(DEPOSIT, {"id": made["deposit"]["id"]}))["node"]["status"] == "FAILED"
    assert await wallet_of(person.user_id) == (0, 0)

    await server.pay(deposit.payment_intent_id)  # the customer retries with a card that works
    await eventually(lambda: person.web.data(DEPOSIT, {"id": made["deposit"]["id"]}),
                     lambda d: d["node"]["status"] == "SUCCEEDED", within=20)
    assert await wallet_of(person.user_id) == (700, 0)


async def test_deposits_are_for_humans_with_valid_amounts(make_person, stripe_env) -> None:
    person = await make_person("agentdep")
    err = await person.agent.error(CREATE_DEPOSIT, {"i": {"amountCents": 2500}})
    assert err["extensions"]["code"] == "FORBIDDEN"
    for amount in (0, -100, 99, 1_000_001):
        bad = (await person.web.data(CREATE_DEPOSIT, {"i": {"amountCents": amount}}))["createDeposit"]
        assert bad["__typename"] == "ValidationFailed" and bad["fields"][0]["field"] == "amountCents"
    assert not await Deposit.filter(user_id=person.user_id).exists()
    other = await make_person("snoop")
    made = (await person.web.data(CREATE_DEPOSIT, {"i": {"amountCents": 2500}}))["createDeposit"]
    assert (await other.web.data(DEPOSIT, {"id": made["deposit"]["id"]}))["node"] is None


async def test_without_stripe_keys_payments_are_not_configured(api: str, make_person) -> None:
    person = await make_person("nostripe")
    answer = (await person.web.data(CREATE_DEPOSIT, {"i": {"amountCents": 2500}}))["createDeposit"]
    assert answer["__typename"] == "PaymentsNotConfigured" and answer["code"] == "PAYMENTS_NOT_CONFIGURED"
    body = b'{"id": "evt_1", "type": "payment_intent.succeeded"}'
    assert (await post_webhook(api, body, sign(body))).status_code == 503


def gid_to_pk(global_id: str) -> uuid.UUID:
    from strawberry.relay import GlobalID

    return uuid.UUID(GlobalID.from_id(global_id).node_id)


async def _async(value):
    return value
