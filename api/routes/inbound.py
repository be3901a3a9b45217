"""Incoming messages: ``POST /v1/webhooks/twilio/inbound/{tenant_id}``.

The tenant points its number's incoming-message webhook here (the tenant id in the URL
says whose number it is). The signature is checked with the Twilio SDK's
``RequestValidator`` before anything else (403 otherwise); then one SQL call
(``app.record_inbound``) records the message on its conversation and acts on keywords
(STOP -> opt-out + one confirmation reply, START, HELP). The answer is empty TwiML: the
replies go out through Hermes's own send path, recorded like any message.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request, Response

from api.deps import CommandsDep
from api.errors import Problem
from api.routes.webhooks import verified_twilio_params
from hermes.sqlcall import inbound_url

router = APIRouter(prefix="/v1")

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@router.post("/webhooks/twilio/inbound/{tenant_id}")
async def twilio_inbound(tenant_id: UUID, request: Request, commands: CommandsDep) -> Response:
    settings = request.app.state.settings
    params = verified_twilio_params(
        settings,
        inbound_url(settings.public_url, "twilio", str(tenant_id)),
        request.url.query,
        await request.body(),
        request.headers.get("x-twilio-signature", ""),
    )
    sid = params.get("MessageSid") or params.get("SmsSid")
    if not sid or not params.get("From") or not params.get("To"):
        raise Problem(422, "invalid_inbound", "MessageSid, From and To are required.")
    await commands.record_inbound(
        "twilio", str(tenant_id), sid, params["From"], params["To"], params.get("Body", ""), params
    )
    return Response(EMPTY_TWIML, media_type="application/xml")
