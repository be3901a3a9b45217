"""Tenant isolation, API-key scopes, rotation and revocation, on both APIs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

from tests.system.conftest import Stack


def _send(stack: Stack, token: str) -> str:
    with stack.api(token) as c:
        r = c.post("/v1/messages", json={"to": "+14155550111", "body": f"iso {uuid.uuid4()}"})
    assert r.status_code == 201, r.text
    message_id: str = r.json()["id"]
    return message_id


def test_tenant_b_sees_nothing_of_tenant_a(stack: Stack) -> None:
    a: dict[str, Any] = stack.new_tenant("A")
    b: dict[str, Any] = stack.new_tenant("B")
    ta, tb = a["api_key"]["token"], b["api_key"]["token"]
    mid = _send(stack, ta)
    stack.wait_message(ta, mid, {"delivered"})

    with stack.rest(tb) as c:
        assert c.get("/messages").json() == []
        assert c.get("/messages", params={"id": f"eq.{mid}"}).json() == []
        assert c.get("/message_events", params={"message_id": f"eq.{mid}"}).json() == []
    with stack.rest(ta) as c:
        assert [m["id"] for m in c.get("/messages").json()] == [mid]
        assert len(c.get("/message_events", params={"message_id": f"eq.{mid}"}).json()) >= 4
    with stack.api(tb) as c:
        r = c.get(f"/v1/messages/{mid}")
    assert r.status_code == 404
    assert r.json()["code"] == "message_not_found"

    # No key: PostgREST answers, with no rows; the command API refuses.
    with stack.rest() as c:
        assert c.get("/messages").json() == []
        assert c.get("/message_events").json() == []
    with stack.api() as c:
        r = c.get(f"/v1/messages/{mid}")
    assert r.status_code == 401
    assert r.json()["code"] == "missing_api_key"


def test_read_key_cannot_write_and_revoked_key_is_refused(stack: Stack) -> None:
    t = stack.new_tenant("Scopes")
    owner = t["api_key"]["token"]
    with stack.api(owner) as c:
        r = c.post("/v1/api-keys", json={"name": "reader", "scopes": ["read"]})
    assert r.status_code == 201, r.text
    reader = r.json()
    assert reader["scopes"] == ["read"]
    assert reader["prefix"].startswith("hk_sandbox_")

    with stack.api(reader["token"]) as c:
        r = c.post("/v1/messages", json={"to": "+14155550112", "body": "nope"})
        assert r.status_code == 403
        assert r.json()["code"] == "insufficient_scope"
        assert c.post("/v1/api-keys", json={"name": "x", "scopes": ["read"]}).status_code == 403
        assert c.post("/v1/tenants", json={"name": "x"}).status_code == 403
    with stack.rest(reader["token"]) as c:
        assert c.get("/messages").status_code == 200
        w = c.post("/messages", json={"to": "+1", "body": "x"})
        assert w.status_code in (401, 403, 405)
        assert c.patch("/messages", json={"status": "delivered"}).status_code in (401, 403, 405)
        assert c.delete("/messages").status_code in (401, 403, 405)
    assert stack.sql("SELECT count(*) AS n FROM app.messages WHERE body = 'nope'")[0]["n"] == 0

    # Listing never shows secrets.
    with stack.api(owner) as c:
        listed = c.get("/v1/api-keys").json()["data"]
    assert {k["prefix"] for k in listed} >= {reader["prefix"]}
    assert all("token" not in k and "secret_hash" not in k for k in listed)

    # Revocation: refused at once on both APIs.
    with stack.api(owner) as c:
        r = c.post(f"/v1/api-keys/{reader['id']}/revoke")
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    with stack.rest(reader["token"]) as c:
        r = c.get("/messages")
    assert r.status_code == 401
    assert r.json()["details"] == "invalid_api_key"
    with stack.api(reader["token"]) as c:
        r = c.get(f"/v1/messages/{uuid.uuid4()}")
    assert r.status_code == 401
    assert r.json()["code"] == "invalid_api_key"
    assert r.headers["www-authenticate"] == "Bearer"


def test_rotation_keeps_the_old_key_for_the_overlap_only(stack: Stack) -> None:
    t = stack.new_tenant("Rotate")
    old = t["api_key"]
    with stack.api(old["token"]) as c:
        r = c.post(f"/v1/api-keys/{old['id']}/rotate", json={"overlap_seconds": 3600})
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["rotated_from"] == old["id"]
    for token in (old["token"], new["token"]):
        with stack.rest(token) as c:
            assert c.get("/messages").status_code == 200
    # End the overlap now (as an operator would by waiting): the old key stops working.
    stack.sql("UPDATE app.api_keys SET expires_at = now() WHERE id = %s", (old["id"],))
    with stack.rest(old["token"]) as c:
        assert c.get("/messages").status_code == 401
    with stack.api(old["token"]) as c:
        assert c.get("/v1/api-keys").status_code == 401
    with stack.api(new["token"]) as c:
        assert c.get("/v1/api-keys").status_code == 200


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _jwt(claims: dict[str, Any], secret: str | None, alg: str = "HS256") -> str:
    """A compact JWS built by hand (no JWT library decides what is sent): HS256 keyed
    by secret, or alg "none" with an empty signature when secret is None."""
    header = _b64url(json.dumps({"alg": alg, "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{body}"
    if secret is None:
        return signing_input + "."
    mac = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(mac)}"


def test_forged_jwt_with_valid_shape_is_refused(stack: Stack) -> None:
    """PostgREST verifies the token (signature, alg, exp, nbf), then private.check_request
    wants the sha256 of the exact token in app.api_keys; the command API only the
    latter. A forged token is refused by both, and reads nothing, writes nothing."""
    t = stack.new_tenant("Forge")
    real = t["api_key"]["token"]
    mid = _send(stack, real)
    stack.wait_message(real, mid, {"delivered"})
    secret = stack.sql("SELECT value FROM private.settings WHERE key = 'jwt_secret'")[0]["value"]
    header_b64, claims_b64, sig_b64 = real.split(".")
    assert json.loads(_b64url_decode(header_b64)) == {"alg": "HS256", "typ": "JWT"}
    # The secret read here is the one the key was signed with.
    mac = hmac.new(secret.encode(), f"{header_b64}.{claims_b64}".encode(), hashlib.sha256)
    assert _b64url(mac.digest()) == sig_b64
    claims: dict[str, Any] = json.loads(_b64url_decode(claims_b64))
    assert claims["role"] == "hermes_integrator"
    now = int(time.time())

    # Positive control: the real key reads its tenant's message through PostgREST.
    with stack.rest(real) as c:
        r = c.get("/messages")
    assert r.status_code == 200, r.text
    assert [m["id"] for m in r.json()] == [mid]

    # name -> (token, PostgREST's status, its "code", its "message" or "details").
    # PGRST301: PostgREST's own JWT check refused it. PT401: the token verified, but
    # private.check_request found no key with its hash. 42501: PostgREST verified it
    # and could not switch to the role it names (hermes_authenticator is no member).
    invalid_key = (401, "PT401", "invalid_api_key")
    cases: dict[str, tuple[str, tuple[int, str, str]]] = {
        "garbage signature": (
            f"{header_b64}.{claims_b64}.{_b64url(bytes(32))}",
            (401, "PGRST301", "JWSError JWSInvalidSignature"),
        ),
        "alg none, unsigned": (
            _jwt(claims, None, alg="none"),
            (401, "PGRST301", "JWSError JWSNoSignatures"),
        ),
        "signed with another secret": (
            _jwt(claims, "not-the-" + secret),
            (401, "PGRST301", "JWSError JWSInvalidSignature"),
        ),
        "expired (exp in the past)": (
            _jwt(claims | {"exp": now - 3600}, secret),
            (401, "PGRST301", "JWT expired"),
        ),
        "not yet valid (nbf in the future)": (
            _jwt(claims | {"nbf": now + 3600}, secret),
            (401, "PGRST301", "JWTNotYetValid"),
        ),
        # Re-signed with the right secret: PostgREST accepts the signature, the key
        # lookup by hash refuses it.
        "same claims, other bytes": (_jwt(claims, secret), invalid_key),  # no spaces
        "other jti": (_jwt(claims | {"jti": uuid.uuid4().hex * 2}, secret), invalid_key),
        "role hermes_anon": (_jwt(claims | {"role": "hermes_anon"}, secret), invalid_key),
        "role postgres": (
            _jwt(claims | {"role": "postgres"}, secret),
            (403, "42501", 'permission denied to set role "postgres"'),
        ),
        "role hermes_api": (
            _jwt(claims | {"role": "hermes_api"}, secret),
            (403, "42501", 'permission denied to set role "hermes_api"'),
        ),
    }
    for name, (token, (status, code, text)) in cases.items():
        assert token != real
        with stack.rest(token) as c:
            for path in ("/messages", "/message_events"):
                r = c.get(path)
                assert r.status_code == status, (name, path, r.text)
                body = r.json()
                assert isinstance(body, dict), (name, path, body)  # an error, not rows
                assert body["code"] == code, (name, path, body)
                assert text in (body["message"], body["details"]), (name, path, body)
                assert mid not in r.text, (name, path)
        with stack.api(token) as c:
            r = c.post("/v1/messages", json={"to": "+14155550111", "body": f"forged {name}"})
        assert r.status_code == 401, (name, r.text)
        assert r.json()["code"] == "invalid_api_key", (name, r.text)
    written = stack.sql("SELECT count(*) AS n FROM app.messages WHERE body LIKE %s", ("forged %",))
    assert written[0]["n"] == 0
    # The real key still works: nothing above was refused for want of a working stack.
    with stack.api(real) as c:
        assert (
            c.post("/v1/messages", json={"to": "+14155550111", "body": "real"}).status_code == 201
        )


def test_an_expensive_read_is_cut_off_with_a_clear_error(stack: Stack) -> None:
    """PostgREST applies hermes_integrator's statement_timeout (an impersonated role
    setting) to each request: a query that scans a tenant's 400,000 events is cut off
    with SQLSTATE 57014 while a cheap one still answers. The timeout is lowered for the
    test (5 s in production: this machine would need far more rows) and restored."""
    t = stack.new_tenant("Heavy")
    token = t["api_key"]["token"]
    mid = _send(stack, token)
    stack.wait_message(token, mid, {"delivered"})
    stack.sql(
        "INSERT INTO app.message_events (message_created_at, message_id, tenant_id, event_type, details)"
        " SELECT m.created_at, m.id, m.tenant_id, 'provider_status', jsonb_build_object('n', g)"
        "   FROM app.messages m, generate_series(1, 400000) g WHERE m.id = %s",
        (mid,),
    )
    stack.sql("ANALYZE app.message_events")
    expensive = {"select": "id", "error_code": "eq.nope"}  # no index: every event of the tenant

    def reload(timeout: str) -> None:
        stack.sql(f"ALTER ROLE hermes_integrator SET statement_timeout = '{timeout}'")
        stack.sql("NOTIFY pgrst, 'reload config'")

    reload("30ms")
    try:
        deadline = time.monotonic() + 15
        with stack.rest(token) as c:
            while True:
                r = c.get("/message_events", params=expensive)
                if r.status_code != 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)  # PostgREST reloads its config asynchronously
            assert r.status_code == 500, r.text
            body = r.json()
            assert body["code"] == "57014"
            assert "statement timeout" in body["message"]
            cheap = c.get("/messages", params={"id": f"eq.{mid}"})
            assert cheap.status_code == 200 and [m["id"] for m in cheap.json()] == [mid]
    finally:
        reload("5s")
    with stack.rest(token) as c:
        deadline = time.monotonic() + 15
        while True:
            r = c.get("/message_events", params=expensive)
            if r.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert r.status_code == 200 and r.json() == [], (
        "with the production timeout the same read answers"
    )
