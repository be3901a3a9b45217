"""Callbacks of a tenant's own provider account (issue 19): each is verified with the
secret of the account it belongs to, and a receipt is applied only to an attempt of the
provider and account whose secret signed it.

* a STOP to a tenant-owned Twilio number, signed by Twilio with the tenant account's
  auth token, opts the person out (it was refused 403 and lost);
* a status callback for an attempt sent through a tenant's account, signed with the
  deployment's auth token, is refused and changes nothing; signed with the tenant's,
  it is stored with that account;
* the API (hermes_api) cannot open a tenant account's credentials, only its
  webhook-verification secret.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import psycopg
import pytest

from hermes.services import SIM_ACCOUNT_SID, SIM_AUTH_TOKEN
from hermes.sqlcall import inbound_url, status_callback_url
from simulators.twilio.app import compute_signature
from tests.system.conftest import Stack

TENANT_TOKEN = "tenant-own-auth-token-0000000000001"


def _tenant(stack: Stack, name: str) -> tuple[str, str]:
    with stack.api(stack.admin_key) as c:
        r = c.post("/v1/tenants", json={"name": name, "environment": "test",
                                        "default_sms_from": "+15005550006"})  # fmt: skip
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    stack.sql(
        'SELECT private.set_tenant_policy(%s, NULL, \'{"default_category": "transactional", '
        '"content_dedup_seconds": 0}\')',
        (body["tenant"]["id"],),
    )
    return str(body["tenant"]["id"]), str(body["api_key"]["token"])


def _twilio_account(stack: Stack, token: str, auth_token: str) -> str:
    with stack.api(token) as c:
        r = c.post("/v1/provider-accounts", json={"provider": "twilio", "name": "Own",
                   "credentials": {"account_sid": SIM_ACCOUNT_SID, "auth_token": auth_token}})  # fmt: skip
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_a_stop_to_a_tenant_owned_number_signed_with_its_token_opts_out(stack: Stack) -> None:
    tenant_id, token = _tenant(stack, "Own Number Co")
    _twilio_account(stack, token, TENANT_TOKEN)
    url = inbound_url(stack.cfg.api_url, "twilio", tenant_id)
    form = {
        "MessageSid": f"SM{uuid.uuid4().hex}",
        "AccountSid": "ACtenant0000000000000000000000000",
        "From": "+14155550188",
        "To": "+15005550006",
        "Body": "STOP",
    }
    path = url.removeprefix(stack.cfg.api_url)
    with stack.api() as c:
        # Signed with another token than the account's: refused, nothing recorded.
        bad = compute_signature("not-" + TENANT_TOKEN, url, form)
        r = c.post(path, data=form, headers={"X-Twilio-Signature": bad})
        assert r.status_code == 403, r.text
        # Signed by Twilio for the tenant's own account: its auth token.
        good = compute_signature(TENANT_TOKEN, url, form)
        r = c.post(path, data=form, headers={"X-Twilio-Signature": good})
    assert r.status_code == 200, r.text
    rows = stack.sql(
        "SELECT kind, source FROM app.consent_events WHERE tenant_id = %s AND channel IN ('sms', 'all')",
        (tenant_id,),
    )
    assert [(r["kind"], r["source"]) for r in rows] == [("opt_out", "keyword")], rows


def _attempt_through_account(stack: Stack, token: str, account: str) -> tuple[str, str]:
    with stack.api(token) as c:
        m = c.post("/v1/messages", json={"to": "+14155550187", "body": f"own {uuid.uuid4()}"})
    assert m.status_code == 201, m.text
    message_id = str(m.json()["id"])
    row = stack.sql(
        "SELECT id::text, provider_account_id::text AS account FROM app.message_attempts WHERE message_id = %s",
        (message_id,),
    )[0]
    assert row["account"] == account
    return message_id, str(row["id"])


def test_a_receipt_signed_for_another_account_is_not_applied(stack: Stack) -> None:
    _, token = _tenant(stack, "Own Receipts Co")
    # The tenant's token is not the simulator's: the sends fail (401, retried), so the
    # only receipts are the ones this test posts.
    account = _twilio_account(stack, token, TENANT_TOKEN)
    message_id, attempt_id = _attempt_through_account(stack, token, account)
    url = status_callback_url(stack.cfg.api_url, "twilio", attempt_id)
    path = url.removeprefix(stack.cfg.api_url)
    sid = f"SM{uuid.uuid4().hex}"
    form = {"MessageSid": sid, "MessageStatus": "delivered", "AccountSid": SIM_ACCOUNT_SID}

    with stack.api() as c:
        # Signed with the deployment's auth token: not the account this attempt used.
        r = c.post(path, data=form,
                   headers={"X-Twilio-Signature": compute_signature(SIM_AUTH_TOKEN, url, form)})  # fmt: skip
    assert r.status_code == 403, r.text
    assert stack.sql("SELECT 1 FROM app.receipts WHERE provider_message_id = %s", (sid,)) == []
    time.sleep(0.5)  # the receipt applier would have run
    status = stack.sql("SELECT status FROM app.messages WHERE id = %s", (message_id,))[0]
    assert status["status"] != "delivered"

    # Signed with the tenant account's token: stored, bound to that account.
    with stack.api() as c:
        r = c.post(path, data=form,
                   headers={"X-Twilio-Signature": compute_signature(TENANT_TOKEN, url, form)})  # fmt: skip
    assert r.status_code == 204, r.text
    rows = stack.sql(
        "SELECT provider, account_id::text AS account FROM app.receipts WHERE provider_message_id = %s",
        (sid,),
    )
    assert rows == [{"provider": "twilio", "account": account}]


def test_the_api_role_opens_only_webhook_secrets(stack: Stack) -> None:
    _, token = _tenant(stack, "Secrets Co")
    account = _twilio_account(stack, token, TENANT_TOKEN)
    with psycopg.connect(stack.cfg.dsn("hermes_api"), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM app.provider_account_credentials(%s::uuid[])", ([account],))
        rows = conn.execute(
            "SELECT provider, webhook_secret IS NOT NULL FROM app.provider_account_webhook_secrets(%s::uuid[])",
            ([account],),
        ).fetchall()
    assert rows == [("twilio", True)]


def _stop(stack: Stack, tenant_id: str, auth_token: str) -> int:
    url = inbound_url(stack.cfg.api_url, "twilio", tenant_id)
    form = {"MessageSid": f"SM{uuid.uuid4().hex}", "From": "+14155550186",
            "To": "+15005550006", "Body": "STOP"}  # fmt: skip
    with stack.api() as c:
        r = c.post(url.removeprefix(stack.cfg.api_url), data=form,
                   headers={"X-Twilio-Signature": compute_signature(auth_token, url, form)})  # fmt: skip
    return r.status_code


def test_accounts_sealed_before_webhook_secrets_were_apart_are_resealed(stack: Stack) -> None:
    """Migration 0026: SQL cannot open sealed credentials, so an account stored before
    has no webhook secret until `python -m hermes.migrate` (with the keys) reseals it,
    or a worker that opens the account to send fills it first."""
    from hermes.credentials import Sealer
    from hermes.migrate import reseal_webhook_secrets

    tenant_id, token = _tenant(stack, "Old Account Co")
    account = _twilio_account(stack, token, TENANT_TOKEN)
    stack.sql(
        "UPDATE app.provider_accounts SET webhook_secret = NULL, webhook_key_id = NULL WHERE id = %s",
        (account,),
    )
    assert _stop(stack, tenant_id, TENANT_TOKEN) == 403  # the API has nothing to check it with
    sealer = Sealer.from_spec(stack.cfg.credentials_env()["HERMES_CREDENTIALS_KEYS"])
    assert sealer is not None
    with psycopg.connect(stack.owner_dsn, autocommit=True) as conn:
        assert reseal_webhook_secrets(conn, sealer) == 1
        assert reseal_webhook_secrets(conn, sealer) == 0  # once
    assert _stop(stack, tenant_id, TENANT_TOKEN) == 200

    # The worker's path: it opens the account to send, and fills the secret first.
    tenant2, token2 = _tenant(stack, "Old Account Two")
    account2 = _twilio_account(stack, token2, SIM_AUTH_TOKEN)
    stack.sql(
        "UPDATE app.provider_accounts SET webhook_secret = NULL, webhook_key_id = NULL WHERE id = %s",
        (account2,),
    )
    with stack.api(token2) as c:
        m = c.post("/v1/messages", json={"to": "+14155550185", "body": "resealed"}).json()
    assert stack.wait_message(token2, m["id"], {"delivered", "failed"})["status"] == "delivered"
    rows = stack.sql(
        "SELECT webhook_secret IS NOT NULL AS sealed FROM app.provider_accounts WHERE id = %s",
        (account2,),
    )
    assert rows == [{"sealed": True}]
    assert _stop(stack, tenant2, SIM_AUTH_TOKEN) == 200


def test_a_whatsapp_stop_signed_with_the_tenant_apps_secret_opts_out(stack: Stack) -> None:
    """A tenant's own WhatsApp account: Meta signs its webhooks with that app's secret
    (``app_secret``, sealed apart); the deployment's does not verify them. A STOP to the
    tenant's business number is recorded; signed with another secret, it is refused."""
    import hashlib
    import hmac
    import json

    number = "+14155550777"
    with stack.api(stack.admin_key) as c:
        r = c.post("/v1/tenants", json={"name": "Own WhatsApp Co", "environment": "test",
                                        "default_sms_from": "+15005550006",
                                        "default_whatsapp_from": number})  # fmt: skip
    assert r.status_code == 201, r.text
    tenant_id, token = r.json()["tenant"]["id"], r.json()["api_key"]["token"]
    with stack.api(token) as c:
        r = c.post("/v1/provider-accounts", json={"provider": "whatsapp", "name": "Own WA",
                   "credentials": {"access_token": "EAAtenant", "app_secret": "tenant-app-secret",
                                   "phone_numbers": {number: "100000000000777"}}})  # fmt: skip
    assert r.status_code == 201, r.text
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {
        "metadata": {"display_phone_number": number.lstrip("+"), "phone_number_id": "100000000000777"},
        "messages": [{"id": f"wamid.{uuid.uuid4().hex}", "from": "14155550184", "type": "text",
                      "text": {"body": "STOP"}}]}}]}]}).encode()  # fmt: skip

    def post(secret: str) -> int:
        sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        with stack.api() as c:
            return c.post("/v1/webhooks/whatsapp", content=body,
                          headers={"X-Hub-Signature-256": sig}).status_code  # fmt: skip

    assert post("another-secret") == 403
    assert post("tenant-app-secret") == 200
    rows = stack.sql(
        "SELECT kind, channel FROM app.consent_events WHERE tenant_id = %s", (tenant_id,)
    )
    assert [(r["kind"], r["channel"]) for r in rows] == [("opt_out", "whatsapp")], rows
