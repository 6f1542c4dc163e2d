"""`POST /webhooks/stripe`: signature-verified Stripe events (localstripe in tests)."""

from __future__ import annotations

import logging

import stripe
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.core.settings import get_settings
from app.funding import deposits

log = logging.getLogger("mlpatron.stripe")
MAX_BODY_BYTES = 512 * 1024


def _reject(status: int, reason: str, request: Request) -> Response:
    client = request.client.host if request.client else "unknown"
    log.warning("stripe webhook rejected (%s) from %s: %s", status, client, reason)
    return JSONResponse({"error": reason}, status_code=status)


async def stripe_webhook(request: Request) -> Response:
    secret = get_settings().stripe_webhook_secret
    if not secret:
        return _reject(503, "payments are not configured", request)
    payload = await request.body()
    if len(payload) > MAX_BODY_BYTES:
        return _reject(413, "body too large", request)
    try:
        event = stripe.Webhook.construct_event(payload, request.headers.get("stripe-signature"), secret).to_dict()
        event_id, event_type = str(event["id"]), str(event["type"])
        intent = dict(event["data"]["object"])
        if event_type.startswith("payment_intent.") and not isinstance(intent.get("id"), str):
            raise ValueError("payment intent without an id")
    except stripe.SignatureVerificationError as exc:
        return _reject(400, f"bad signature: {exc.user_message or exc}", request)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        # Signed but not a Stripe event we can read (construct_event verifies before parsing).
        return _reject(400, f"malformed event: {type(exc).__name__}", request)
    applied = await deposits.apply_event(event_id, event_type, intent)
    return JSONResponse({"received": True, "applied": applied})
