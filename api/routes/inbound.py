"""Incoming messages: ``POST /v1/webhooks/twilio/inbound``.

A number's incoming-message webhook points here; the sender registry says whose number
it is (the ``To`` written to). The older per-tenant form,
``POST /v1/webhooks/twilio/inbound/{tenant_id}``, stays as an alias: the number must be
that tenant's (403 ``number_not_yours`` otherwise, and nothing is recorded). The
signature is checked with the Twilio SDK's
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


@router.post("/webhooks/twilio/inbound")
async def twilio_inbound_by_number(request: Request, commands: CommandsDep) -> Response:
    return await twilio_inbound(None, request, commands)


@router.post("/webhooks/twilio/inbound/{tenant_id}")
async def twilio_inbound(
    tenant_id: UUID | None, request: Request, commands: CommandsDep
) -> Response:
    settings = request.app.state.settings
    tenant = None if tenant_id is None else str(tenant_id)
    params = verified_twilio_params(
        settings,
        inbound_url(settings.public_url, "twilio", tenant),
        request.url.query,
        await request.body(),
        request.headers.get("x-twilio-signature", ""),
    )
    sid = params.get("MessageSid") or params.get("SmsSid")
    if not sid or not params.get("From") or not params.get("To"):
        raise Problem(422, "invalid_inbound", "MessageSid, From and To are required.")
    await commands.record_inbound(
        "twilio", tenant, sid, params["From"], params["To"], params.get("Body", ""), params
    )
    return Response(EMPTY_TWIML, media_type="application/xml")
