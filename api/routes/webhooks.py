"""Provider callbacks. Signatures are checked with the provider's own SDK before any
state changes; the receipt itself is one SQL call that appends it to the receipt inbox
(app.record_receipt); the workers apply the inbox in batches (app.apply_receipts).

Three of every four requests Hermes serves per message are status callbacks, so they
take a path of their own in front of FastAPI (:class:`StatusCallbacks`, plain ASGI):
read the form body, verify, append, 204. Everything else goes to FastAPI. The callbacks
that arrive within a few milliseconds are appended in one call (:class:`ReceiptBatcher`,
``app.record_receipts``), and each is acknowledged only once that call has committed:
a 204 always means the receipt is stored.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import psycopg
from starlette.types import ASGIApp, Receive, Scope, Send
from twilio.request_validator import RequestValidator

from api.db import Commands
from api.errors import Problem, from_db_error
from api.settings import Settings
from api.sns import SnsPolicy, SnsVerifier, ses_receipt
from api.vonage import verified_vonage_params, vonage_params, vonage_receipt
from api.whatsapp import (
    signature_matches,
    verify_signature,
    verify_subscription,
    webhook_payload,
    whatsapp_inbound,
    whatsapp_receipts,
)
from hermes.accounts import Accounts
from hermes.credentials import Sealer
from hermes.gather import Gatherer
from hermes.sqlcall import STATUS_CALLBACK_PATH, rolled_back_alone, status_callback_url

log = logging.getLogger("hermes.api.webhooks")

TWILIO_PREFIX = STATUS_CALLBACK_PATH.format(provider="twilio", attempt_id="")
# SES's events, through the SNS topic of its configuration set's event destination.
SES_SNS_PATH = "/v1/webhooks/ses/sns"
# The WhatsApp Cloud API app's webhook (statuses; GET: the subscription handshake).
WHATSAPP_PATH = "/v1/webhooks/whatsapp"
# Vonage's delivery receipts (the account's signed DLR webhook).
VONAGE_DLR_PATH = "/v1/webhooks/vonage/dlr"


class ReceiptBatcher:
    """Gathers receipts for up to ``linger`` seconds (or ``max_batch`` of them) and
    appends them with one ``app.record_receipts`` call; each caller gets its own
    outcome (queued, duplicate, attempt_not_found) or the call's error."""

    def __init__(
        self, commands: Callable[[], Commands], max_batch: int = 500, linger: float = 0.004
    ) -> None:
        self.commands = commands
        self._gather: Gatherer[dict[str, Any], str] = Gatherer(self._append, max_batch, linger)

    async def add(self, receipt: dict[str, Any]) -> str:
        return await self._gather.submit(receipt)

    async def _append(self, receipts: list[dict[str, Any]]) -> list[str | BaseException]:
        try:
            outcomes = await self.commands().record_receipts(receipts)
        except psycopg.Error as exc:
            if len(receipts) > 1 and rolled_back_alone(exc):
                # One receipt (a bad value, a bug it triggers) must not refuse the others
                # -- any provider's, any tenant's: one by one.
                return [await self._one(r) for r in receipts]
            raise
        return [str(o["outcome"]) for o in outcomes]

    async def _one(self, receipt: dict[str, Any]) -> str | BaseException:
        try:
            return (await self._append([receipt]))[0]
        except psycopg.Error as exc:
            return exc


def webhook_accounts(sealer: Sealer | None, commands: Callable[[], Commands]) -> Accounts:
    """Tenants' accounts as the API opens them: their webhook-verification secrets only."""
    return Accounts(
        sealer, lambda ids: commands().provider_account_webhook_secrets(ids), purpose="webhook"
    )


async def account_secrets(
    accounts: Accounts, account_id: str | None, provider: str
) -> dict[str, Any]:
    """The opened webhook secrets of a tenant account of ``provider`` ({} when there is
    no such account, no key, or no secret sealed for it yet)."""
    if account_id is None or accounts.sealer is None:
        return {}
    try:
        account = await accounts.get(account_id)
    except (LookupError, ValueError) as exc:  # a blob that does not open
        log.error("webhook secret of account %s does not open: %s", account_id, exc)
        return {}
    if account is None or account.provider != provider:
        return {}
    return account.credentials


class _FormParams(dict[str, str]):
    """A form as the SDK's validator reads a MultiDict (``getall``): given a plain dict,
    ``RequestValidator.get_values`` raises and catches two AttributeErrors per parameter
    before it falls back, 12 % of the receiver's CPU under load (py-spy)."""

    def getall(self, name: str) -> list[str]:
        return [self[name]]


def verified_twilio_params(
    settings: Settings,
    url: str,
    query: str,
    body: bytes,
    signature: str,
    auth_token: str | None = None,
) -> dict[str, str]:
    """The form params of a Twilio webhook to ``url`` (the URL Twilio was given: our
    public base URL, not whatever host or scheme a proxy in between presents to us),
    once its ``X-Twilio-Signature`` is checked with the SDK's ``RequestValidator``
    (with the deployment's auth token, or ``auth_token``: a tenant's own account's);
    403 invalid_signature otherwise. NULs are dropped after the check (which covers
    what was sent): the params are stored as text and jsonb, which hold none."""
    params = _FormParams(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    if query:
        url += "?" + query
    token = auth_token or settings.twilio_auth_token
    if not token or not RequestValidator(token).validate(url, params, signature):
        raise Problem(403, "invalid_signature", "The X-Twilio-Signature does not match.")
    return {k.replace("\x00", ""): v.replace("\x00", "") for k, v in params.items()}


def twilio_receipt(
    settings: Settings,
    attempt_id: str,
    query: str,
    body: bytes,
    signature: str,
    auth_token: str | None = None,
) -> dict[str, Any]:
    """``POST /v1/webhooks/twilio/status/{attempt_id}``: one Twilio status callback
    (form-encoded), verified and turned into the receipt to append. Raises
    :class:`Problem` (403 invalid_signature, 422 invalid_receipt)."""
    url = status_callback_url(settings.public_url, "twilio", attempt_id)
    params = verified_twilio_params(settings, url, query, body, signature, auth_token)
    sid = params.get("MessageSid") or params.get("SmsSid")
    status = params.get("MessageStatus") or params.get("SmsStatus")
    if not sid or not status:
        raise Problem(422, "invalid_receipt", "MessageSid and MessageStatus are required.")
    return {
        "provider": "twilio",
        "attempt_id": attempt_id,
        "provider_message_id": sid,
        "provider_status": status,
        "error_code": params.get("ErrorCode"),
        "error_message": params.get("ErrorMessage"),
        "payload": params,
    }


class StatusCallbacks:
    """ASGI: provider status callbacks here, every other request to ``app``."""

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        commands: Callable[[], Commands],
        sealer: Sealer | None = None,
        accounts: Accounts | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.commands = commands
        # Tenants' own accounts sign their callbacks with their own secrets: the
        # webhook-verification secrets alone (never the credentials), opened on first use.
        self.accounts = accounts or webhook_accounts(sealer, commands)
        # commands: returns the live Commands (created in the app's lifespan).
        self.receipts = ReceiptBatcher(commands)
        self.sns = SnsVerifier(
            SnsPolicy(settings.sns_topic_arns, settings.sns_url_prefixes, settings.sns_ca_file)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"].startswith(TWILIO_PREFIX)
        ):
            await self._guarded(scope, receive, send, self._twilio)
            return
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == SES_SNS_PATH:
            await self._guarded(scope, receive, send, self._ses)
            return
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == VONAGE_DLR_PATH
        ):
            await self._guarded(scope, receive, send, self._vonage)
            return
        if scope["type"] == "http" and scope["path"] == WHATSAPP_PATH:
            if scope["method"] == "POST":
                await self._guarded(scope, receive, send, self._whatsapp)
                return
            if scope["method"] == "GET":
                await self._whatsapp_handshake(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _guarded(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        handler: Callable[[Scope, Receive], Awaitable[int]],
    ) -> None:
        """Runs a callback handler; its Problem, or a database error, is the answer."""
        path: str = scope["path"]
        try:
            status = await handler(scope, receive)
        except Problem as problem:
            await problem.response(path)(scope, receive, send)
            return
        except psycopg.Error as exc:
            mapped = from_db_error(exc)
            if mapped.status >= 500:
                log.error("callback %s failed: %s", path, type(exc).__name__)
            await mapped.response(path)(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def _ses(self, _scope: Scope, receive: Receive) -> int:
        """``POST /v1/webhooks/ses/sns``: an SNS message, verified first (api/sns.py).
        A subscription confirmation is confirmed; an SES event becomes a receipt (an event
        for an email Hermes did not send, with no hermes_attempt_id tag, is dropped)."""
        body = await _read_body(receive, self.settings.max_body_bytes * 4)
        message = await self.sns.verified(body)
        kind = message.get("Type")
        if kind == "SubscriptionConfirmation":
            await self.sns.confirm(message)
            return 200
        if kind != "Notification":
            return 204
        receipt = ses_receipt(message)
        if receipt is None:
            log.info("SES event without a Hermes attempt id: dropped")
            return 204
        try:
            uuid.UUID(receipt["attempt_id"])
        except ValueError:
            raise Problem(
                422, "invalid_receipt", "hermes_attempt_id is not an attempt id."
            ) from None
        outcome = await self.receipts.add(receipt)
        if outcome == "attempt_not_found":
            # Acknowledged all the same: SNS would retry a 4xx for nothing.
            log.warning("SES event for unknown attempt %s", receipt["attempt_id"])
        return 204

    async def _attempt_secrets(
        self, attempt_id: str, provider: str
    ) -> tuple[str | None, dict[str, Any]]:
        """The tenant account an attempt went through (None: the deployment's) and that
        account's webhook secrets, if it is one of ``provider`` and they open."""
        account_id = await self.commands().attempt_provider_account(attempt_id)
        return account_id, await account_secrets(self.accounts, account_id, provider)

    async def _whatsapp(self, scope: Scope, receive: Receive) -> int:
        """``POST /v1/webhooks/whatsapp``: verified first (X-Hub-Signature-256), then each
        status carrying a Hermes attempt id is a receipt, and each message a person sent
        is an inbound message (app.record_whatsapp_inbound: STOP opts out of WhatsApp).
        200, as Meta expects, once everything is stored; Meta retries anything else."""
        body = await _read_body(receive, self.settings.max_body_bytes * 4)
        signature = None
        for name, value in scope["headers"]:
            if name == b"x-hub-signature-256":
                signature = value.decode("latin-1")
                break
        # The deployment's app secret, else the secret of the tenant account the webhook
        # names (an attempt of its statuses, else the business number of its messages):
        # the body is parsed unverified only to find which secret to check it with.
        account: str | None = None
        try:
            verify_signature(self.settings.whatsapp_app_secret, body, signature)
        except Problem as unsigned:
            try:
                account = await self._whatsapp_account(webhook_payload(body))
            except Problem:
                raise unsigned from None  # not even a webhook: the signature is the answer
            secret = (await account_secrets(self.accounts, account, "whatsapp")).get("app_secret")
            if not secret:
                raise
            verify_signature(str(secret), body, signature)
        payload = webhook_payload(body)
        inbound = whatsapp_inbound(payload)
        if inbound and account is not None:
            # Signed with a tenant's app secret: its own numbers' messages only.
            for message in inbound:
                owner = await self.commands().inbound_provider_account(
                    "whatsapp", None, message["to"]
                )
                if owner != account:
                    raise Problem(
                        403, "invalid_signature", "The webhook is not signed by this number's app."
                    )
        if inbound:
            for result in await self.commands().record_whatsapp_inbound(inbound):
                if result.get("skipped"):
                    log.warning(
                        "WhatsApp message %s to a number no tenant sends from", result["id"]
                    )
        receipts = whatsapp_receipts(payload)
        if not receipts:
            return 200  # statuses of messages Hermes did not send, or none
        outcomes = await asyncio.gather(
            *(self.receipts.add(r | {"account_id": account}) for r in receipts)
        )
        refused = 0
        for receipt, outcome in zip(receipts, outcomes, strict=True):
            if outcome == "refused" and account is None:
                # The deployment's secret verified it, but the attempt went through a
                # tenant's account: only that account's app secret counts.
                owner, secrets = await self._attempt_secrets(receipt["attempt_id"], "whatsapp")
                secret = secrets.get("app_secret")
                if secret and signature_matches(str(secret), body, signature):
                    outcome = await self.receipts.add(receipt | {"account_id": owner})
            if outcome == "refused":
                refused += 1
                log.warning("WhatsApp status for attempt %s refused: not signed by its account",
                            receipt["attempt_id"])  # fmt: skip
            elif outcome == "attempt_not_found":
                log.warning("WhatsApp status for unknown attempt %s", receipt["attempt_id"])
        if refused:
            raise Problem(
                403, "invalid_signature", "A status is not signed by the account of its attempt."
            )
        return 200

    async def _whatsapp_account(self, payload: dict[str, Any]) -> str | None:
        """The tenant account a (not yet verified) webhook names: the account of the
        attempt of its first status carrying one, else the account of the business
        number its first message was sent to (app.inbound_provider_account)."""
        for receipt in whatsapp_receipts(payload):
            return await self.commands().attempt_provider_account(receipt["attempt_id"])
        for message in whatsapp_inbound(payload):
            return await self.commands().inbound_provider_account("whatsapp", None, message["to"])
        return None

    async def _vonage(self, scope: Scope, receive: Receive) -> int:
        """``POST /v1/webhooks/vonage/dlr``: a signed delivery receipt (api/vonage.py)."""
        body = await _read_body(receive, self.settings.max_body_bytes)
        content_type = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
                break
        raw = vonage_params(body, content_type)
        account: str | None = None
        try:
            params = verified_vonage_params(
                self.settings.vonage_api_key, self.settings.vonage_signature_secret, raw
            )
        except Problem:
            # A tenant's own Vonage account signs with its own secret (its client-ref
            # names the attempt, hence the account).
            try:
                attempt_id = str(uuid.UUID(raw.get("client-ref", "")))
            except ValueError:
                raise Problem(
                    403, "invalid_signature", "The receipt's signature does not match."
                ) from None
            account, secrets = await self._attempt_secrets(attempt_id, "vonage")
            if not secrets.get("signature_secret") or not secrets.get("api_key"):
                raise
            params = verified_vonage_params(
                str(secrets["api_key"]), str(secrets["signature_secret"]), raw
            )
        receipt = vonage_receipt(params)
        if receipt is None:
            log.info("Vonage receipt without a Hermes attempt id: dropped")
            return 204
        outcome = await self.receipts.add(receipt | {"account_id": account})
        if outcome == "refused" and account is None:
            # The deployment's secret verified it; the attempt went through a tenant's
            # account: only that account's secret counts.
            owner, secrets = await self._attempt_secrets(receipt["attempt_id"], "vonage")
            if secrets.get("signature_secret") and secrets.get("api_key"):
                try:
                    verified_vonage_params(
                        str(secrets["api_key"]), str(secrets["signature_secret"]), raw
                    )
                except Problem:
                    pass
                else:
                    outcome = await self.receipts.add(receipt | {"account_id": owner})
        if outcome == "refused":
            raise Problem(
                403, "invalid_signature", "The receipt is not signed by the account of its attempt."
            )
        if outcome == "attempt_not_found":
            log.warning("Vonage receipt for unknown attempt %s", receipt["attempt_id"])
        return 204

    async def _whatsapp_handshake(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET /v1/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=..&hub.challenge=..``"""
        params = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        try:
            challenge = verify_subscription(self.settings.whatsapp_verify_token, params)
        except Problem as problem:
            await problem.response(scope["path"])(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": challenge.encode()})

    async def _twilio(self, scope: Scope, receive: Receive) -> int:
        path: str = scope["path"]
        try:
            attempt_id = str(uuid.UUID(path[len(TWILIO_PREFIX) :]))
        except ValueError:
            raise Problem(404, "not_found", "No such callback URL.") from None
        body = await _read_body(receive, self.settings.max_body_bytes)
        signature = ""
        for name, value in scope["headers"]:
            if name == b"x-twilio-signature":
                signature = value.decode("latin-1")
                break
        query = scope.get("query_string", b"").decode("latin-1")
        # The deployment's auth token first (the common case: one call to SQL); the
        # receipt is stored only if the attempt went through the deployment's account
        # (app.record_receipts). Otherwise the auth token of the tenant account it went
        # through is the one that must have signed it.
        account: str | None = None
        try:
            receipt = twilio_receipt(self.settings, attempt_id, query, body, signature)
        except Problem as problem:
            if problem.code != "invalid_signature":
                raise
            account, secrets = await self._attempt_secrets(attempt_id, "twilio")
            token = secrets.get("auth_token")
            if not token:
                raise
            receipt = twilio_receipt(self.settings, attempt_id, query, body, signature, str(token))
        outcome = await self.receipts.add(receipt | {"account_id": account})
        if outcome == "refused" and account is None:
            owner, secrets = await self._attempt_secrets(attempt_id, "twilio")
            token = secrets.get("auth_token")
            if token:
                try:
                    receipt = twilio_receipt(
                        self.settings, attempt_id, query, body, signature, str(token)
                    )
                except Problem:
                    pass
                else:
                    outcome = await self.receipts.add(receipt | {"account_id": owner})
        if outcome == "refused":
            raise Problem(
                403,
                "invalid_signature",
                "The callback is not signed by the account its attempt was sent through.",
            )
        if outcome == "attempt_not_found":
            raise Problem(404, "attempt_not_found", "No such attempt.")
        return 204


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Problem(400, "client_disconnected", "The client went away.")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise Problem(413, "payload_too_large", f"The request body exceeds {limit} bytes.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
