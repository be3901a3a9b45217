"""WhatsApp Cloud API webhooks: the signature check, the subscription handshake, and
the status updates as receipts.

Meta signs every webhook POST with the app's secret: ``X-Hub-Signature-256:
sha256=<hex HMAC-SHA256 of the raw body>``. It is checked (constant time) before the body
is even parsed; a missing, malformed or wrong signature is 403 and changes nothing.

When the webhook is configured, Meta verifies it with ``GET ?hub.mode=subscribe&
hub.verify_token=<the token set in the app>&hub.challenge=<n>``: the challenge is echoed
only when the token matches (403 otherwise).

A status update names the message (``id``, the wamid), its ``status`` (sent, delivered,
read, failed ...), and ``biz_opaque_callback_data`` -- the attempt id Hermes sent -- which
is how a status finds its attempt even when the worker died before it recorded the wamid.
A status without it (a message Hermes did not send) is dropped. One POST may carry several
statuses (and several entries); each becomes a receipt.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from typing import Any

import orjson

from api.errors import Problem


def verify_signature(secret: str, body: bytes, header: str | None) -> None:
    """403 invalid_signature unless ``header`` is the body's HMAC-SHA256 under ``secret``."""
    if not secret:
        raise Problem(403, "invalid_signature", "No WhatsApp app secret is configured.")
    scheme, _, given = (header or "").partition("=")
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if scheme != "sha256" or not hmac.compare_digest(given.lower().encode(), expected.encode()):
        raise Problem(403, "invalid_signature", "The X-Hub-Signature-256 does not match.")


def verify_subscription(verify_token: str, params: dict[str, str]) -> str:
    """The handshake: the challenge to echo, or 403."""
    if (
        not verify_token
        or params.get("hub.mode") != "subscribe"
        or not hmac.compare_digest(
            params.get("hub.verify_token", "").encode(), verify_token.encode()
        )
    ):
        raise Problem(403, "invalid_verify_token", "The verify token does not match.")
    challenge = params.get("hub.challenge", "")
    if not challenge or len(challenge) > 100:
        raise Problem(400, "invalid_challenge", "hub.challenge is required.")
    return challenge


def whatsapp_receipts(body: bytes) -> list[dict[str, Any]]:
    """The receipts of a (verified) webhook body: one per status carrying an attempt id."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Problem(400, "invalid_json", "The webhook body is not JSON.") from None
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        raise Problem(422, "invalid_receipt", "Not a whatsapp_business_account webhook.")
    receipts: list[dict[str, Any]] = []
    for entry in payload.get("entry") or []:
        for change in (entry or {}).get("changes") or []:
            value = (change or {}).get("value") or {}
            if not isinstance(value, dict):
                continue
            for status in value.get("statuses") or []:
                if not isinstance(status, dict):
                    continue
                attempt = status.get("biz_opaque_callback_data")
                try:
                    attempt_id = str(uuid.UUID(str(attempt)))
                except ValueError:
                    continue  # not a message Hermes sent
                if not status.get("id") or not status.get("status"):
                    raise Problem(422, "invalid_receipt", "A status needs id and status.")
                errors = status.get("errors") or [{}]
                error = errors[0] if isinstance(errors[0], dict) else {}
                receipts.append(
                    {
                        "provider": "whatsapp",
                        "attempt_id": attempt_id,
                        "provider_message_id": str(status["id"])[:200],
                        "provider_status": str(status["status"])[:40],
                        "error_code": str(error["code"]) if error.get("code") else None,
                        "error_message": (
                            str(error.get("title") or error.get("message"))[:300]
                            if error.get("code")
                            else None
                        ),
                        "payload": status,
                    }
                )
    return receipts
