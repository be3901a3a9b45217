"""A tenant's own provider account, end to end: its credentials sealed by the API (never
answered back or logged), its steps sent with them by the worker (a wrong token fails at
the provider: the tenant's credentials are the ones used), disabled -> the deployment's
again; a sandbox tenant's account is never used (simulators only)."""

from __future__ import annotations

import time
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from hermes.services import SIM_ACCOUNT_SID, SIM_AUTH_TOKEN
from tests.system.conftest import Stack

BOGUS_TOKEN = "tenant-secret-that-must-never-show-0001"


def _tenant(stack: Stack, name: str, environment: str) -> str:
    with stack.api(stack.admin_key) as c:
        r = c.post("/v1/tenants", json={"name": name, "environment": environment,
                                        "default_sms_from": "+15005550006"})  # fmt: skip
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    stack.sql(
        'SELECT private.set_tenant_policy(%s, NULL, \'{"default_category": "transactional", '
        '"content_dedup_seconds": 0}\')',
        (body["tenant"]["id"],),
    )
    return str(body["api_key"]["token"])


def _account(stack: Stack, token: str, auth_token: str) -> dict[str, Any]:
    with stack.api(token) as c:
        r = c.post("/v1/provider-accounts", json={"provider": "twilio", "name": "Own",
                   "credentials": {"account_sid": SIM_ACCOUNT_SID, "auth_token": auth_token}})  # fmt: skip
    assert r.status_code == 201, r.text
    assert auth_token not in r.text  # never answered back
    return dict(r.json())


def _fcm_key(**extra: Any) -> dict[str, Any]:
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {
        "type": "service_account",
        "project_id": "tenant-project",
        "private_key": pem.decode(),
        "client_email": "push@tenant-project.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    } | extra


def _attempt(stack: Stack, message_id: str) -> dict[str, Any]:
    return stack.sql(
        "SELECT provider_account_id::text AS account, status FROM app.message_attempts WHERE message_id = %s",
        (message_id,),
    )[0]


def test_a_tenant_account_sends_with_its_own_credentials(stack: Stack) -> None:
    token = _tenant(stack, "Own Account Co", "test")
    account = _account(stack, token, SIM_AUTH_TOKEN)
    stored = stack.sql(
        "SELECT credentials FROM app.provider_accounts WHERE id = %s", (account["id"],)
    )
    assert SIM_AUTH_TOKEN.encode() not in bytes(stored[0]["credentials"])  # sealed at rest
    with stack.api(token) as c:
        m1 = c.post("/v1/messages", json={"to": "+14155550161", "body": "own"}).json()
    done = stack.wait_message(token, m1["id"], {"delivered", "failed"})
    assert done["status"] == "delivered"
    assert _attempt(stack, m1["id"])["account"] == account["id"]

    # A wrong token: the provider refuses the tenant's credentials (401: retried) --
    # proof that they, not the deployment's, are used.
    bogus = _account(stack, token, BOGUS_TOKEN)
    assert bogus["replaces"] == account["id"]
    with stack.api(token) as c:
        m2 = c.post("/v1/messages", json={"to": "+14155550162", "body": "bogus"}).json()
    errors: list[dict[str, Any]] = []
    deadline = time.monotonic() + 20
    while not errors and time.monotonic() < deadline:
        errors = stack.sql(
            "SELECT error_code FROM app.message_events WHERE message_id = %s AND event_type = 'send_error'",
            (m2["id"],),
        )
        time.sleep(0.1)
    assert errors and errors[0]["error_code"].startswith("twilio:"), errors
    # ... and nothing reached the carrier under the bogus account
    assert [m for m in stack.carrier_ledger() if m.get("body") == "bogus"] == []
    assert _attempt(stack, m2["id"])["account"] == bogus["id"]

    # Disabled: the next message goes through the deployment's account.
    with stack.api(token) as c:
        r = c.post(f"/v1/provider-accounts/{bogus['id']}/disable")
        assert r.status_code == 200, r.text
        m3 = c.post("/v1/messages", json={"to": "+14155550163", "body": "deployment"}).json()
    assert stack.wait_message(token, m3["id"], {"delivered", "failed"})["status"] == "delivered"
    assert _attempt(stack, m3["id"])["account"] is None
    # The read API lists the accounts, never their credentials.
    with stack.rest(token) as c:
        rows = c.get("/provider_accounts", params={"order": "created_at"}).json()
    assert [(a["name"], a["active"]) for a in rows] == [("Own", False), ("Own", False)]
    assert all("credentials" not in a for a in rows)
    assert BOGUS_TOKEN not in stack.log_path.read_text()  # nor in any process's log


def test_a_sandbox_tenants_account_is_never_used(stack: Stack) -> None:
    token = _tenant(stack, "Sandbox Account Co", "sandbox")
    _account(stack, token, BOGUS_TOKEN)
    with stack.api(token) as c:
        m = c.post("/v1/messages", json={"to": "+14155550164", "body": "sandbox"}).json()
    assert stack.wait_message(token, m["id"], {"delivered", "failed"})["status"] == "delivered"
    assert _attempt(stack, m["id"])["account"] is None


def test_bad_account_requests_are_refused(stack: Stack) -> None:
    token = _tenant(stack, "Bad Account Co", "test")
    cases = [
        ({"provider": "twilio", "name": "x", "credentials": {"account_sid": "AC1"}}, 422, "invalid_credentials"),
        ({"provider": "twilio", "name": "x", "credentials": {"account_sid": "AC1", "auth_token": "t", "x": 1}},
         422, "invalid_credentials"),
        ({"provider": "fax", "name": "x", "credentials": {}}, 422, "invalid_credentials"),
        ({"provider": "fcm", "name": "x", "credentials": {"service_account": {"project_id": "p"}}}, 422,
         "invalid_credentials"),
        # A key file's token_uri is where the worker would POST its signed grant: only
        # Google's (or the deployment's configured endpoint) -- never the tenant's choice.
        ({"provider": "fcm", "name": "x", "credentials": {"service_account": _fcm_key(
            token_uri="http://169.254.169.254/latest/meta-data/")}}, 422, "invalid_credentials"),
        ({"provider": "fcm", "name": "x", "credentials": {"service_account": _fcm_key(
            extra_field="x")}}, 422, "invalid_credentials"),
    ]  # fmt: skip
    with stack.api(token) as c:
        for body, status, code in cases:
            r = c.post("/v1/provider-accounts", json=body)
            assert (r.status_code, r.json().get("code")) == (status, code), (body, r.text)
    with stack.api(token) as c:
        r = c.post("/v1/provider-accounts", json={"provider": "fcm", "name": "Push",
                   "credentials": {"service_account": _fcm_key()}})  # fmt: skip
    assert r.status_code == 201, r.text  # Google's own key file
    reader = stack.sql(
        "SELECT private.mint_api_key(t.id, 'reader', ARRAY['read']) ->> 'token' AS token "
        "FROM app.tenants t WHERE t.name = 'Bad Account Co'"
    )[0]["token"]
    with stack.api(reader) as c:
        r = c.post("/v1/provider-accounts", json={"provider": "twilio", "name": "x",
                   "credentials": {"account_sid": "AC1", "auth_token": "t"}})  # fmt: skip
    assert r.status_code == 403 and r.json()["code"] == "insufficient_scope", r.text


def test_a_keys_write_key_neither_sets_accounts_nor_revokes_wider_keys(stack: Stack) -> None:
    """Review of issue 19: a key-management key (keys:write) could point every later
    message at a provider account it controls, and revoke the tenant's wider keys.
    Provider accounts take providers:write (the first key has it); revoking follows the
    subset rule of creating (403 scope_escalation)."""
    owner = _tenant(stack, "Key Manager Co", "test")
    with stack.api(owner) as c:
        me = c.get("/v1/api-keys").json()["data"][0]
        r = c.post("/v1/api-keys", json={"name": "keys", "scopes": ["keys:write"]})
        assert r.status_code == 201, r.text
        manager = r.json()
        r = c.post("/v1/api-keys", json={"name": "narrow", "scopes": ["keys:write"]})
        narrow = r.json()
    with stack.api(manager["token"]) as c:
        r = c.post("/v1/provider-accounts", json={"provider": "twilio", "name": "Mine",
                   "credentials": {"account_sid": SIM_ACCOUNT_SID, "auth_token": BOGUS_TOKEN}})  # fmt: skip
        assert (r.status_code, r.json()["code"]) == (403, "insufficient_scope"), r.text
        r = c.post(f"/v1/api-keys/{me['id']}/revoke")
        assert (r.status_code, r.json()["code"]) == (403, "scope_escalation"), r.text
        assert c.post(f"/v1/api-keys/{narrow['id']}/revoke").json()["status"] == "revoked"
    with stack.api(owner) as c:  # the owner's key still works
        assert c.get("/v1/api-keys").status_code == 200
    accounts = stack.sql(
        "SELECT count(*) AS n FROM app.provider_accounts a JOIN app.tenants t ON t.id = a.tenant_id "
        "WHERE t.name = 'Key Manager Co'"
    )
    assert accounts[0]["n"] == 0
    assert "providers:write" in me["scopes"]
