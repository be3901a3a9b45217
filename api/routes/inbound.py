"""Incoming messages: ``POST /v1/webhooks/twilio/inbound/{tenant_id}``.

The tenant points its number's incoming-message webhook here (the tenant id in the URL
says whose number it is). The signature is checked with the Twilio SDK's
``RequestValidator`` before anything else (403 otherwise); then one SQL call
(``app.record_inbound``) records the message on its conversation and acts on keywords
(STOP -> opt-out + one confirmation reply, START, HELP). The answer is empty TwiML: the
replies go out through Hermes's own send path, recorded like any message.
"""

from __future__ import annotations

from urllib.parse import parse_qsl
from uuid import UUID

from fastapi import APIRouter, Request, Response
from twilio.request_validator import RequestValidator

from api.deps import CommandsDep
from api.errors import Problem
from hermes.sqlcall import inbound_url

router = APIRouter(prefix="/v1")

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@router.post("/webhooks/twilio/inbound/{tenant_id}")
async def twilio_inbound(tenant_id: UUID, request: Request, commands: CommandsDep) -> Response:
    settings = request.app.state.settings
    body = await request.body()
    params = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    url = inbound_url(settings.public_url, "twilio", str(tenant_id))
    if request.url.query:
        url += "?" + request.url.query
    signature = request.headers.get("x-twilio-signature", "")
    if not settings.twilio_auth_token or not RequestValidator(settings.twilio_auth_token).validate(
        url, params, signature
    ):
        raise Problem(403, "invalid_signature", "The X-Twilio-Signature does not match.")
    params = {k.replace("\x00", ""): v.replace("\x00", "") for k, v in params.items()}
    sid = params.get("MessageSid") or params.get("SmsSid")
    if not sid or not params.get("From") or not params.get("To"):
        raise Problem(422, "invalid_inbound", "MessageSid, From and To are required.")
    await commands.record_inbound(
        "twilio", str(tenant_id), sid, params["From"], params["To"], params.get("Body", ""), params
    )
    return Response(EMPTY_TWIML, media_type="application/xml")
