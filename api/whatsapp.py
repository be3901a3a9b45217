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


def signature_matches(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the body's HMAC-SHA256 under ``secret``."""
    try:
        verify_signature(secret, body, header)
    except Problem:
        return False
    return True


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


def webhook_payload(body: bytes) -> dict[str, Any]:
    """A (verified) webhook body, parsed: a ``whatsapp_business_account`` object."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Problem(400, "invalid_json", "The webhook body is not JSON.") from None
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        raise Problem(422, "invalid_receipt", "Not a whatsapp_business_account webhook.")
    return payload


def _values(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Every ``entry[].changes[].value`` object of a webhook."""
    return [
        value
        for entry in payload.get("entry") or []
        if isinstance(entry, dict)
        for change in entry.get("changes") or []
        if isinstance(change, dict) and isinstance(value := change.get("value"), dict)
    ]


def whatsapp_inbound(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages people sent to a business number (``value.messages``), as
    app.record_whatsapp_inbound takes them: the sender's wa_id and the business number
    (``metadata.display_phone_number``) as E.164, the text (a text message's body, a
    button's text; other types -- media, location -- carry none)."""
    messages: list[dict[str, Any]] = []
    for value in _values(payload):
        metadata = value.get("metadata") or {}
        to = "+" + "".join(
            ch for ch in str(metadata.get("display_phone_number") or "") if ch.isdigit()
        )
        for m in value.get("messages") or []:
            if not isinstance(m, dict) or not m.get("id") or not m.get("from"):
                raise Problem(422, "invalid_inbound", "An inbound message needs id and from.")
            kind = str(m.get("type") or "")
            part: dict[str, Any] = m[kind] if isinstance(m.get(kind), dict) else {}
            text = part.get("body") if kind == "text" else part.get("text")
            messages.append(
                {
                    "id": str(m["id"])[:64],
                    "from": "+" + str(m["from"]).lstrip("+"),
                    "to": to,
                    "body": str(text or "")[:4096],
                    "params": {
                        "type": kind,
                        "phone_number_id": str(metadata.get("phone_number_id") or ""),
                    },
                }
            )
    return messages


def whatsapp_receipts(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The receipts of a (verified) webhook: one per status carrying an attempt id."""
    receipts: list[dict[str, Any]] = []
    for value in _values(payload):
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
