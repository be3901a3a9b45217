"""One SMS from the command API to the carrier and back, read through PostgREST."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from postgrest import SyncPostgrestClient

from tests.system.conftest import Stack


@pytest.fixture(scope="module")
def tenant(stack: Stack) -> dict[str, Any]:
    return stack.new_tenant("Acme")


def send(stack: Stack, token: str, payload: dict[str, Any], **headers: str) -> httpx.Response:
    with stack.api(token) as c:
        return c.post("/v1/messages", json=payload, headers=headers)


def test_sms_is_delivered_and_readable_through_postgrest(
    stack: Stack, tenant: dict[str, Any]
) -> None:
    token = tenant["api_key"]["token"]
    body = f"hello {uuid.uuid4()}"
    started = time.monotonic()
    r = send(stack, token, {"to": "+1 415 555 0100", "body": body})
    assert r.status_code == 201, r.text
    msg = r.json()
    assert msg["status"] == "queued"
    assert msg["to"] == "+14155550100"
    assert msg["from"] == "+15005550006"

    done = stack.wait_message(token, msg["id"], {"delivered", "undelivered", "failed"})
    elapsed = time.monotonic() - started
    assert done["status"] == "delivered"
    assert done["provider"] == "twilio"
    assert done["provider_message_id"].startswith("SM")
    assert done["error_code"] is None
    assert elapsed < 10

    # The command API agrees with the read API.
    with stack.api(token) as c:
        got = c.get(f"/v1/messages/{msg['id']}").json()
    assert got["status"] == "delivered"
    assert got["provider_message_id"] == done["provider_message_id"]

    # The carrier got it exactly once.
    creates = [m for m in stack.carrier_ledger() if m["body"] == body]
    assert len(creates) == 1
    assert creates[0]["sid"] == done["provider_message_id"]

    # The event ledger, through PostgREST, with the postgrest-py client.
    client = SyncPostgrestClient(
        stack.cfg.postgrest_url, schema="api", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        events: list[dict[str, Any]] = (
            client.from_("message_events")
            .select("event_type,status,provider_status")
            .eq("message_id", msg["id"])
            .order("id")
            .execute()
            .data  # type: ignore[assignment]
        )
    finally:
        client.session.close()
    types = [e["event_type"] for e in events]
    assert types[:2] == ["accepted", "claimed"]
    assert "handed_off" in types
    provider_statuses = [
        e["provider_status"] for e in events if e["event_type"] == "provider_status"
    ]
    assert sorted(provider_statuses) == ["delivered", "queued", "sent"]


@pytest.mark.parametrize(
    ("to", "status", "error_code"),
    [
        ("+15005550010", "undelivered", "twilio:30003"),
        ("+15005550012", "failed", "twilio:30008"),
    ],
)
def test_carrier_failure_outcomes(
    stack: Stack, tenant: dict[str, Any], to: str, status: str, error_code: str
) -> None:
    token = tenant["api_key"]["token"]
    r = send(stack, token, {"to": to, "body": f"fail {uuid.uuid4()}"})
    assert r.status_code == 201, r.text
    done = stack.wait_message(token, r.json()["id"], {"delivered", "undelivered", "failed"})
    assert done["status"] == status
    assert done["error_code"] == error_code


@pytest.mark.parametrize(
    ("to", "error_code"),
    [
        ("+15005550001", "twilio:21211"),  # invalid number
        ("+15005550009", "twilio:21614"),  # not SMS-capable
        ("+15005550004", "twilio:21610"),  # recipient replied STOP
    ],
)
def test_provider_refusal_fails_without_retry(
    stack: Stack, tenant: dict[str, Any], to: str, error_code: str
) -> None:
    token = tenant["api_key"]["token"]
    body = f"refused {uuid.uuid4()}"
    r = send(stack, token, {"to": to, "body": body})
    assert r.status_code == 201, r.text
    done = stack.wait_message(token, r.json()["id"], {"delivered", "undelivered", "failed"})
    assert done["status"] == "failed"
    assert done["error_code"] == error_code
    assert [m for m in stack.carrier_ledger() if m["body"] == body] == []
    rows = stack.sql(
        "SELECT count(*) AS n FROM app.message_events WHERE message_id = %s AND event_type = 'send_error'",
        (r.json()["id"],),
    )
    assert rows[0]["n"] == 1


def test_many_messages_two_workers_each_sent_once(stack: Stack, tenant: dict[str, Any]) -> None:
    token = tenant["api_key"]["token"]
    tag = uuid.uuid4().hex[:8]
    ids = []
    with stack.api(token) as c:
        for i in range(40):
            r = c.post("/v1/messages", json={"to": f"+1415555{i:04d}", "body": f"bulk {tag} {i}"})
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
    for message_id in ids:
        assert stack.wait_message(token, message_id, {"delivered"})["status"] == "delivered"
    creates = [m for m in stack.carrier_ledger() if m["body"].startswith(f"bulk {tag} ")]
    assert len(creates) == 40
    assert len({m["body"] for m in creates}) == 40
    terminal = stack.sql(
        "SELECT count(*) AS n FROM app.messages WHERE id = ANY(%s::uuid[]) AND completed_at IS NOT NULL",
        (ids,),
    )
    assert terminal[0]["n"] == 40


def test_forged_status_callback_is_refused(stack: Stack, tenant: dict[str, Any]) -> None:
    token = tenant["api_key"]["token"]
    r = send(stack, token, {"to": "+14155550199", "body": f"forge {uuid.uuid4()}"})
    message_id = r.json()["id"]
    stack.wait_message(token, message_id, {"delivered"})
    attempt = stack.sql("SELECT id FROM app.message_attempts WHERE message_id = %s", (message_id,))[
        0
    ]["id"]
    before = stack.sql(
        "SELECT count(*) AS n FROM app.message_events WHERE message_id = %s", (message_id,)
    )
    form = {"MessageSid": "SMforged", "MessageStatus": "undelivered", "ErrorCode": "30003"}
    with stack.api() as c:
        unsigned = c.post(f"/v1/webhooks/twilio/status/{attempt}", data=form)
        wrong = c.post(
            f"/v1/webhooks/twilio/status/{attempt}",
            data=form,
            headers={"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"},
        )
    for resp in (unsigned, wrong):
        assert resp.status_code == 403
        assert resp.headers["content-type"] == "application/problem+json"
        assert resp.json()["code"] == "invalid_signature"
    after = stack.sql(
        "SELECT count(*) AS n FROM app.message_events WHERE message_id = %s", (message_id,)
    )
    assert after == before
    assert stack.wait_message(token, message_id, {"delivered"})["status"] == "delivered"


def test_a_signed_callback_with_a_nul_is_stored_and_its_neighbours_too(
    stack: Stack, tenant: dict[str, Any]
) -> None:
    """PostgreSQL text holds no NUL: a callback carrying one is stored without it, and
    the callbacks batched with it are not refused along with it."""
    from concurrent.futures import ThreadPoolExecutor

    from hermes.services import SIM_AUTH_TOKEN
    from simulators.twilio.app import compute_signature

    token = tenant["api_key"]["token"]
    ids = []
    for i in range(3):
        r = send(stack, token, {"to": f"+1415555018{i}", "body": f"nul {uuid.uuid4()}"})
        ids.append(r.json()["id"])
        stack.wait_message(token, ids[-1], {"delivered"})
    attempts = [
        stack.sql("SELECT id::text FROM app.message_attempts WHERE message_id = %s", (m,))[0]["id"]
        for m in ids
    ]

    def post(i: int) -> int:
        path = f"/v1/webhooks/twilio/status/{attempts[i]}"
        form = {"MessageSid": f"SMnul{i}", "MessageStatus": "read", "ErrorMessage": "a\x00b"}
        sig = compute_signature(SIM_AUTH_TOKEN, stack.cfg.api_url + path, form)
        with stack.api() as c:
            return c.post(path, data=form, headers={"X-Twilio-Signature": sig}).status_code

    with ThreadPoolExecutor(3) as pool:
        codes = list(pool.map(post, range(3)))
    assert codes == [204, 204, 204]
    rows = stack.sql(
        "SELECT error_message FROM app.receipts WHERE attempt_id = ANY(%s::uuid[]) AND provider_status = 'read'",
        (attempts,),
    )
    assert sorted(r["error_message"] for r in rows) == ["ab", "ab", "ab"]
