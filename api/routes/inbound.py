"""Incoming messages: ``POST /v1/webhooks/twilio/inbound``.

A number's incoming-message webhook points here; the sender registry says whose number
it is (the ``To`` written to). The older per-tenant form,
``POST /v1/webhooks/twilio/inbound/{tenant_id}``, stays as an alias: the number must be
that tenant's (403 ``number_not_yours`` otherwise, and nothing is recorded). The
signature is checked with the Twilio SDK's ``RequestValidator`` before anything else
(403 otherwise), with the deployment's auth token or, for a number on the tenant's own
Twilio account, that account's (app.inbound_provider_account; the API opens only its
webhook secret); then one SQL call
(``app.record_inbound``) records the message on its conversation and acts on keywords
(STOP -> opt-out + one confirmation reply, START, HELP). The answer is empty TwiML: the
replies go out through Hermes's own send path, recorded like any message.
"""

from __future__ import annotations

from urllib.parse import parse_qsl
from uuid import UUID

from fastapi import APIRouter, Request, Response

from api.deps import CommandsDep
from api.errors import Problem
from api.routes.webhooks import account_secrets, verified_twilio_params
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
    url = inbound_url(settings.public_url, "twilio", tenant)
    body = await request.body()
    signature = request.headers.get("x-twilio-signature", "")
    try:
        params = verified_twilio_params(settings, url, request.url.query, body, signature)
    except Problem as refused:
        # Not the deployment's account: the number written to may be on the tenant's own
        # Twilio account, which signs with its auth token (app.inbound_provider_account
        # says which account a number belongs to; the To read here unverified only
        # chooses the token to check with, and is covered by the signature it checks).
        if refused.code != "invalid_signature":
            raise
        to = dict(parse_qsl(body.decode("utf-8", "replace"))).get("To", "")
        account = await commands.inbound_provider_account("twilio", tenant, to)
        secrets = await account_secrets(request.app.state.webhook_accounts, account, "twilio")
        if not secrets.get("auth_token"):
            raise
        params = verified_twilio_params(
            settings, url, request.url.query, body, signature, str(secrets["auth_token"])
        )
    sid = params.get("MessageSid") or params.get("SmsSid")
    if not sid or not params.get("From") or not params.get("To"):
        raise Problem(422, "invalid_inbound", "MessageSid, From and To are required.")
    await commands.record_inbound(
        "twilio", tenant, sid, params["From"], params["To"], params.get("Body", ""), params
    )
    return Response(EMPTY_TWIML, media_type="application/xml")
