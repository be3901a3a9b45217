"""Provider callbacks. Signatures are checked with the provider's own SDK before any
state changes; the receipt itself is one SQL call that appends it to the receipt inbox
(app.record_receipt); the workers apply the inbox in batches (app.apply_receipts)."""

from __future__ import annotations

from urllib.parse import parse_qsl
from uuid import UUID

from fastapi import APIRouter, Request, Response
from twilio.request_validator import RequestValidator

from api.deps import CommandsDep
from api.errors import Problem
from hermes.sqlcall import STATUS_CALLBACK_PATH, status_callback_url

router = APIRouter()


@router.post(STATUS_CALLBACK_PATH.replace("{provider}", "twilio"), status_code=204)
async def twilio_status(attempt_id: UUID, request: Request, commands: CommandsDep) -> Response:
    settings = request.app.state.settings
    # Twilio posts application/x-www-form-urlencoded: parsed directly (the multipart
    # form parser costs more than the rest of the request).
    body = (await request.body()).decode("utf-8", "replace")
    params = dict(parse_qsl(body, keep_blank_values=True))
    # Twilio signs the URL it was given: our public base URL, not whatever host or
    # scheme a proxy in between presents to us.
    url = status_callback_url(settings.public_url, "twilio", str(attempt_id))
    if request.url.query:
        url += "?" + request.url.query
    signature = request.headers.get("x-twilio-signature", "")
    if not settings.twilio_auth_token or not RequestValidator(settings.twilio_auth_token).validate(
        url, params, signature
    ):
        raise Problem(403, "invalid_signature", "The X-Twilio-Signature does not match.")
    sid = params.get("MessageSid") or params.get("SmsSid")
    status = params.get("MessageStatus") or params.get("SmsStatus")
    if not sid or not status:
        raise Problem(422, "invalid_receipt", "MessageSid and MessageStatus are required.")
    await commands.record_receipt(
        "twilio",
        str(attempt_id),
        sid,
        status,
        params.get("ErrorCode"),
        params.get("ErrorMessage"),
        params,
    )
    return Response(status_code=204)
