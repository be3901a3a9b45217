"""Vonage SMS API delivery receipts: the signature check and the receipt.

Receipts are signed with the account's signature secret (Dashboard -> Settings: "signed
webhooks", SHA-256 HMAC): ``timestamp``, ``nonce`` and ``sig`` among the parameters. The
signature is checked with the official SDK's ``Auth.check_signature`` before anything
else, and the receipt must name Hermes's account (``api-key``) and be fresh (``timestamp``
within 10 minutes: a replayed receipt is refused, though it could change nothing); 403
otherwise. The attempt id is the receipt's ``client-ref`` (Hermes sends it with every
message), the message id ``messageId``, the status ``status`` (accepted, buffered,
delivered, expired, failed, rejected, unknown), the error ``err-code`` (0: none).
"""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import parse_qsl

import orjson
from vonage_http_client import Auth

from api.errors import Problem

FRESH_SECONDS = 600


def vonage_params(body: bytes, content_type: str | None) -> dict[str, str]:
    """A receipt's parameters: a form (the default) or JSON."""
    if (content_type or "").startswith("application/json"):
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise Problem(400, "invalid_json", "The receipt is not JSON.") from None
        if not isinstance(data, dict):
            raise Problem(422, "invalid_receipt", "The receipt is not a JSON object.")
        return {str(k): str(v) for k, v in data.items()}
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def verified_vonage_params(
    api_key: str, signature_secret: str, params: dict[str, str], now: float | None = None
) -> dict[str, str]:
    if not api_key or not signature_secret:
        raise Problem(403, "invalid_signature", "No Vonage signature secret is configured.")
    if not params.get("sig"):
        raise Problem(403, "invalid_signature", "The receipt is not signed.")
    auth = Auth(api_key=api_key, signature_secret=signature_secret, signature_method="sha256")
    checked = dict(params)
    if not auth.check_signature(checked):
        raise Problem(403, "invalid_signature", "The receipt's signature does not match.")
    try:
        stamp = float(params.get("timestamp", ""))
    except ValueError:
        raise Problem(403, "invalid_signature", "The receipt's timestamp is unreadable.") from None
    if abs((now or time.time()) - stamp) > FRESH_SECONDS or params.get("api-key") != api_key:
        raise Problem(403, "invalid_signature", "The receipt is stale or for another account.")
    return params


def vonage_receipt(params: dict[str, str]) -> dict[str, Any] | None:
    """The receipt to append, or None when it names no Hermes attempt."""
    try:
        attempt_id = str(uuid.UUID(params.get("client-ref", "")))
    except ValueError:
        return None
    if not params.get("messageId") or not params.get("status"):
        raise Problem(422, "invalid_receipt", "messageId and status are required.")
    err = params.get("err-code") or "0"
    return {
        "provider": "vonage",
        "attempt_id": attempt_id,
        "provider_message_id": params["messageId"][:200],
        "provider_status": params["status"][:40],
        "error_code": None if err == "0" else err[:40],
        "error_message": None,
        "payload": {k: v for k, v in params.items() if k not in ("sig", "nonce")},
    }
