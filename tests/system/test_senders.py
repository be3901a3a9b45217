"""The sender registry end to end (issue 19, "any tenant can send as another tenant's
number"): a tenant cannot send as another tenant's SMS number, email address or
WhatsApp business number (422 sender_not_allowed at intake); a sender reassigned
between a message's intake and its step's claim is refused at the claim (the step
rejected with reason sender_not_allowed); an inbound STOP to a number lands in its
owner's ledger, found by the registry, and an older per-tenant inbound URL naming
another tenant is refused with nothing recorded; the admin routes and api.senders."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from twilio.request_validator import RequestValidator

from hermes.services import SIM_AUTH_TOKEN
from hermes.sqlcall import inbound_url
from tests.system.conftest import Stack

B_SMS = "+14155550999"
B_EMAIL = "hello@b-co.example"
B_WHATSAPP = "+14155550168"


def _tenant(stack: Stack, name: str, environment: str, **defaults: str) -> dict[str, Any]:
    with stack.api(stack.admin_key) as c:
        r = c.post("/v1/tenants", json={"name": name, "environment": environment} | defaults)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    stack.sql(
        'SELECT private.set_tenant_policy(%s, NULL, \'{"default_category": "transactional", '
        '"content_dedup_seconds": 0}\')',
        (body["tenant"]["id"],),
    )
    return body


@pytest.fixture(scope="module")
def tenant_b(stack: Stack) -> dict[str, Any]:
    """A production tenant with senders of its own (its defaults, registered to it)."""
    return _tenant(
        stack,
        "B Co",
        "prod",
        default_sms_from=B_SMS,
        default_email_from=f"B Co <{B_EMAIL}>",
        default_whatsapp_from=B_WHATSAPP,
    )


@pytest.fixture(scope="module")
def tenant_a(stack: Stack) -> dict[str, Any]:
    """A sandbox tenant on the simulators' shared numbers."""
    return stack.new_tenant("A Co")


def _token(tenant: dict[str, Any]) -> str:
    return str(tenant["api_key"]["token"])


def _post(stack: Stack, token: str, payload: dict[str, Any]) -> httpx.Response:
    with stack.api(token) as c:
        return c.post("/v1/messages", json=payload)


@pytest.mark.parametrize(
    "payload",
    [
        {"to": "+14155550777", "from": B_SMS, "body": "I am B"},
        {"channel": "email", "to": "ada@example.com", "from": f"Not B <{B_EMAIL.upper()}>",
         "subject": "Hi", "body": "I am B"},
        {"channel": "whatsapp", "to": "+14155550777", "from": B_WHATSAPP, "body": "I am B"},
        {"channels": [{"channel": "sms", "to": "+14155550777", "body": "me"},
                      {"channel": "sms", "to": "+14155550777", "from": B_SMS, "body": "I am B"}]},
    ],
    ids=["sms", "email", "whatsapp", "cascade-step-2"],
)  # fmt: skip
def test_a_tenant_cannot_send_as_another_tenants_sender(
    stack: Stack, tenant_a: dict[str, Any], tenant_b: dict[str, Any], payload: dict[str, Any]
) -> None:
    """The finding: tenant A posts with tenant B's number (or email, or WhatsApp business
    number) as "from". It was accepted (201) and queued with B's sender."""
    before = stack.sql("SELECT count(*) AS n FROM app.messages WHERE tenant_id = %s",
                       (tenant_a["tenant"]["id"],))[0]["n"]  # fmt: skip
    r = _post(stack, _token(tenant_a), payload)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["code"] == "sender_not_allowed", problem
    assert "is not a sender of yours" in problem["title"] and "registered" in problem["detail"]
    after = stack.sql("SELECT count(*) AS n FROM app.messages WHERE tenant_id = %s",
                      (tenant_a["tenant"]["id"],))[0]["n"]  # fmt: skip
    assert after == before  # nothing stored, nothing queued
    # The batch: that item alone is refused.
    with stack.api(_token(tenant_a)) as c:
        r = c.post(
            "/v1/messages/batch",
            json={"messages": [payload, {"to": "+14155550778", "body": f"ok {uuid.uuid4()}"}]},
        )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [422, 201]
    assert results[0]["problem"]["code"] == "sender_not_allowed"


def test_a_tenant_sends_from_its_own_senders_and_production_never_from_shared_ones(
    stack: Stack, tenant_a: dict[str, Any], tenant_b: dict[str, Any]
) -> None:
    # B's own: explicit, default, email in any case with a display name.
    for payload in (
        {"to": "+14155550777", "from": B_SMS, "body": f"b {uuid.uuid4()}"},
        {"to": "+14155550777", "body": f"b {uuid.uuid4()}"},
        {"channel": "email", "to": "ada@example.com", "from": f"Bee <{B_EMAIL.upper()}>",
         "subject": "Hi", "body": "x"},
    ):  # fmt: skip
        r = _post(stack, _token(tenant_b), payload)
        assert r.status_code == 201, r.text
    # A sandbox tenant may use the simulators' shared numbers ...
    r = _post(stack, _token(tenant_a), {"to": "+14155550777", "from": "+15005550006", "body": "a"})
    assert r.status_code == 201, r.text
    # ... a production tenant never.
    r = _post(stack, _token(tenant_b), {"to": "+14155550777", "from": "+15005550006", "body": "b"})
    assert r.status_code == 422 and r.json()["code"] == "sender_not_allowed", r.text
    # And a production tenant cannot be created on a shared or a taken sender.
    with stack.api(stack.admin_key) as c:
        for defaults in ({"default_sms_from": "+15005550006"}, {"default_sms_from": B_SMS}):
            r = c.post("/v1/tenants", json={"name": "Copycat", "environment": "prod"} | defaults)
            assert r.status_code == 409 and r.json()["code"] == "sender_taken", r.text


def test_the_read_api_lists_a_tenants_senders(
    stack: Stack, tenant_a: dict[str, Any], tenant_b: dict[str, Any]
) -> None:
    with stack.rest(_token(tenant_b)) as c:
        mine = c.get("/senders", params={"order": "channel"}).json()
    assert [(s["channel"], s["address"], s["shared"]) for s in mine] == [
        ("email", B_EMAIL, False),
        ("sms", B_SMS, False),
        ("whatsapp", B_WHATSAPP, False),
    ]
    with stack.rest(_token(tenant_a)) as c:
        theirs = c.get("/senders").json()
    assert theirs and all(s["shared"] for s in theirs)  # only the shared ones: A owns none
    assert B_SMS not in {s["address"] for s in theirs}


def _registered(stack: Stack, sender: dict[str, Any]) -> dict[str, Any]:
    with stack.api(stack.admin_key) as c:
        r = c.post("/v1/senders", json=sender)
    assert r.status_code == 201, r.text
    return dict(r.json())


def _patch(stack: Stack, sender_id: str, changes: dict[str, Any]) -> httpx.Response:
    with stack.api(stack.admin_key) as c:
        return c.patch(f"/v1/senders/{sender_id}", json=changes)


def test_the_admin_routes_register_reassign_and_refuse(
    stack: Stack, tenant_a: dict[str, Any], tenant_b: dict[str, Any]
) -> None:
    a_id, b_id = tenant_a["tenant"]["id"], tenant_b["tenant"]["id"]
    s = _registered(stack, {"channel": "sms", "address": "+1 (415) 555-0901", "tenant_id": a_id,
                            "time_zone": "America/Los_Angeles"})  # fmt: skip
    assert (s["address"], s["tenant_id"], s["number_type"], s["status"]) == (
        "+14155550901", a_id, "long_code", "active")  # fmt: skip
    with stack.api(stack.admin_key) as c:
        taken = c.post("/v1/senders", json={"channel": "sms", "address": "+14155550901",
                                            "tenant_id": b_id})  # fmt: skip
        assert taken.status_code == 409 and taken.json()["code"] == "sender_taken", taken.text
        bad = [
            c.post("/v1/senders", json={"channel": "fax", "address": "+14155550902"}),
            c.post("/v1/senders", json={"channel": "sms", "address": "HERMES"}),
            c.post("/v1/senders", json={"channel": "sms", "address": "+14155550902",
                                        "time_zone": "Mars/Olympus"}),
            c.post("/v1/senders", json={"channel": "email", "kind": "domain", "address": "not a domain"}),
            c.post("/v1/senders", json={"channel": "sms", "address": "+14155550902",
                                        "number_type": "pigeon"}),
        ]  # fmt: skip
        assert [(r.status_code, r.json()["code"]) for r in bad] == [
            (422, "invalid_channel"),
            (422, "invalid_address"),
            (422, "invalid_time_zone"),
            (422, "invalid_address"),
            (422, "invalid_number_type"),
        ]
        listed = c.get("/v1/senders", params={"tenant_id": a_id}).json()["data"]
        assert [x["address"] for x in listed] == ["+14155550901"]
        # A tenant key is not an admin key.
        r = httpx.post(f"{stack.cfg.api_url}/v1/senders", json={"channel": "sms", "address": "+14155550903"},
                       headers={"Authorization": f"Bearer {_token(tenant_a)}"})  # fmt: skip
        assert r.status_code == 403 and r.json()["code"] == "insufficient_scope", r.text
    # Reassigned to B: B may send from it, A no longer.
    r = _patch(stack, s["id"], {"tenant_id": b_id})
    assert r.status_code == 200 and r.json()["tenant_id"] == b_id, r.text
    assert _post(stack, _token(tenant_a), {"to": "+14155550777", "from": "+14155550901",
                                           "body": "a"}).status_code == 422  # fmt: skip
    assert _post(stack, _token(tenant_b), {"to": "+14155550777", "from": "+14155550901",
                                           "body": "b"}).status_code == 201  # fmt: skip
    # Suspended: nobody sends from it; released: final.
    assert _patch(stack, s["id"], {"status": "suspended"}).json()["status"] == "suspended"
    assert _post(stack, _token(tenant_b), {"to": "+14155550777", "from": "+14155550901",
                                           "body": "b"}).status_code == 422  # fmt: skip
    assert _patch(stack, s["id"], {"status": "released"}).json()["status"] == "released"
    r = _patch(stack, s["id"], {"status": "active"})
    assert r.status_code == 409 and r.json()["code"] == "sender_released", r.text
    r = _patch(stack, str(uuid.uuid4()), {"status": "active"})
    assert r.status_code == 404 and r.json()["code"] == "sender_not_found", r.text


def test_a_sender_reassigned_before_its_step_is_claimed_is_refused_there(
    stack: Stack, tenant_b: dict[str, Any]
) -> None:
    """B's cascade: step 1 from a number of B's that is never final (a 2 s step timeout),
    step 2 from another of B's numbers. The operator reassigns step 2's number to another
    tenant meanwhile: at its claim step 2 is rejected, reason sender_not_allowed, nothing
    goes out from it, and the message ends."""
    other = _tenant(stack, "C Co", "prod", default_sms_from="+14155550911")
    token = _token(tenant_b)
    second = _registered(stack, {"channel": "sms", "address": "+14155550912",
                                 "tenant_id": tenant_b["tenant"]["id"]})  # fmt: skip
    r = _post(stack, token, {"channels": [
        {"channel": "sms", "to": "+15005550013", "body": f"one {uuid.uuid4()}", "timeout_seconds": 2},
        {"channel": "sms", "to": "+14155550123", "from": "+14155550912", "body": f"two {uuid.uuid4()}"}]})  # fmt: skip
    assert r.status_code == 201 and r.json()["status"] == "queued", r.text
    message = r.json()
    r = _patch(stack, second["id"], {"tenant_id": other["tenant"]["id"]})
    assert r.status_code == 200, r.text
    done = stack.wait_message(
        token, message["id"], {"rejected", "undelivered", "failed", "delivered"}
    )
    assert done["status"] == "rejected", done
    with stack.rest(token) as c:
        steps = c.get("/message_attempts", params={"message_id": f"eq.{message['id']}",
                                                    "order": "step"}).json()  # fmt: skip
    assert [(s["step"], s["status"]) for s in steps] == [(1, "timed_out"), (2, "rejected")]
    assert steps[1]["error_code"] == "sender_not_allowed"
    assert not [m for m in stack.carrier_ledger() if m.get("from") == "+14155550912"]


def _signed_inbound(stack: Stack, url: str, params: dict[str, str]) -> httpx.Response:
    signature = RequestValidator(SIM_AUTH_TOKEN).compute_signature(url, params)
    return httpx.post(url, data=params, headers={"X-Twilio-Signature": signature})


def _consents(stack: Stack, tenant: dict[str, Any], person: str) -> list[dict[str, Any]]:
    with stack.rest(_token(tenant)) as c:
        rows: list[dict[str, Any]] = c.get(
            "/consent_events", params={"address": f"eq.{person}"}
        ).json()
    return rows


def test_an_inbound_stop_finds_its_tenant_by_the_number_written_to(
    stack: Stack, tenant_a: dict[str, Any], tenant_b: dict[str, Any]
) -> None:
    person = "+14155550188"
    # Through the registry's URL: the STOP to B's number is B's.
    url = inbound_url(stack.cfg.callbacks_url, "twilio")
    r = _signed_inbound(stack, url, {"MessageSid": f"SM{uuid.uuid4().hex}", "From": person,
                                     "To": B_SMS, "Body": "STOP"})  # fmt: skip
    assert r.status_code == 200, r.text
    assert [e["kind"] for e in _consents(stack, tenant_b, person)] == ["opt_out"]
    assert _consents(stack, tenant_a, person) == []
    # Through A's own (older) URL: B's number is not A's -- refused, nothing recorded.
    other = "+14155550189"
    url_a = inbound_url(stack.cfg.callbacks_url, "twilio", tenant_a["tenant"]["id"])
    r = _signed_inbound(stack, url_a, {"MessageSid": f"SM{uuid.uuid4().hex}", "From": other,
                                       "To": B_SMS, "Body": "STOP"})  # fmt: skip
    assert r.status_code == 403 and r.json()["code"] == "number_not_yours", r.text
    assert _consents(stack, tenant_a, other) == [] and _consents(stack, tenant_b, other) == []
    assert not stack.sql("SELECT 1 FROM app.inbound_messages WHERE from_address = %s", (other,))
    # B's own URL still works (an alias); a number nobody has is unknown.
    url_b = inbound_url(stack.cfg.callbacks_url, "twilio", tenant_b["tenant"]["id"])
    r = _signed_inbound(stack, url_b, {"MessageSid": f"SM{uuid.uuid4().hex}", "From": other,
                                       "To": B_SMS, "Body": "STOP"})  # fmt: skip
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 5
    while not _consents(stack, tenant_b, other) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [e["kind"] for e in _consents(stack, tenant_b, other)] == ["opt_out"]
    r = _signed_inbound(stack, url, {"MessageSid": f"SM{uuid.uuid4().hex}", "From": other,
                                     "To": "+14155550000", "Body": "STOP"})  # fmt: skip
    assert r.status_code == 404 and r.json()["code"] == "unknown_number", r.text
