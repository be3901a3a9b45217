"""One SMS from the command API to the carrier and back, read through PostgREST."""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
from postgrest import SyncPostgrestClient
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

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
    if error_code == "twilio:21610":
        # The carrier says the recipient opted out: Hermes records it and sends no more.
        again = send(stack, token, {"to": to, "body": f"again {uuid.uuid4()}"})
        assert again.status_code == 201 and again.json()["status"] == "rejected", again.text
        assert again.json()["reasons"][0]["code"] == "opted_out"


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


def _delivered_attempt(stack: Stack, token: str, to: str) -> tuple[str, str]:
    """Sends one SMS, waits for it to be delivered; its attempt id and the status
    callback URL the carrier was given for it (the URL Twilio signs)."""
    body = f"forge {uuid.uuid4()}"
    r = send(stack, token, {"to": to, "body": body})
    assert r.status_code == 201, r.text
    message_id = r.json()["id"]
    stack.wait_message(token, message_id, {"delivered"})
    attempt: str = stack.sql(
        "SELECT id::text FROM app.message_attempts WHERE message_id = %s", (message_id,)
    )[0]["id"]
    [create] = [m for m in stack.carrier_ledger() if m["body"] == body]
    url: str = create["status_callback"]
    assert url == f"{stack.cfg.callbacks_url}/v1/webhooks/twilio/status/{attempt}"
    return attempt, url


def test_forged_status_callback_is_refused(stack: Stack, tenant: dict[str, Any]) -> None:
    """What a forger can try against a status callback: replay a real signature over
    tampered parameters, or on another attempt's URL, or on a URL that differs from the
    signed one; no signature; a signature made with another auth token. Each is a 403
    invalid_signature and stores nothing; the very request, correctly signed, is a 204
    and is stored (so the refusals are not a broken endpoint)."""
    from simulators.twilio.app import compute_signature

    token = tenant["api_key"]["token"]
    auth_token = stack.cfg.twilio_auth_token
    attempt_a, url_a = _delivered_attempt(stack, token, "+14155550199")
    attempt_b, url_b = _delivered_attempt(stack, token, "+14155550198")
    path_a, path_b = urlsplit(url_a).path, urlsplit(url_b).path
    sid = f"SMforge{uuid.uuid4().hex}"  # no other receipt carries it
    form = {"MessageSid": sid, "MessageStatus": "sent", "AccountSid": stack.cfg.twilio_account_sid}
    good = compute_signature(auth_token, url_a, form)

    def stored() -> list[dict[str, Any]]:
        """Every receipt carrying this test's sid (or a tampered one starting with it)."""
        return stack.sql(
            "SELECT attempt_id::text, provider_message_id, provider_status, source, payload"
            "  FROM app.receipts WHERE starts_with(provider_message_id, %s) ORDER BY id",
            (sid,),
        )

    def events() -> list[dict[str, Any]]:
        """The events the receipt applier made of those receipts."""
        return stack.sql(
            "SELECT attempt_id::text, provider_status, error_code FROM app.message_events"
            " WHERE starts_with(details->>'provider_message_id', %s) ORDER BY id",
            (sid,),
        )

    def counts() -> dict[str, Any]:
        return stack.sql(
            "SELECT (SELECT count(*) FROM app.receipts WHERE attempt_id = ANY(%s::uuid[])) AS receipts,"
            "       (SELECT count(*) FROM app.message_events e JOIN app.message_attempts a"
            "          ON a.message_id = e.message_id WHERE a.id = ANY(%s::uuid[])) AS events",
            ([attempt_a, attempt_b], [attempt_a, attempt_b]),
        )[0]

    before = counts()
    # name -> (path posted to, form posted, X-Twilio-Signature or None for no header)
    forgeries: dict[str, tuple[str, dict[str, str], str | None]] = {
        "status tampered, real signature": (path_a, form | {"MessageStatus": "delivered"}, good),
        "sid tampered, real signature": (path_a, form | {"MessageSid": sid + "x"}, good),
        "parameter added, real signature": (path_a, form | {"ErrorCode": "30003"}, good),
        "parameter dropped, real signature": (
            path_a,
            {"MessageSid": sid, "MessageStatus": "sent"},
            good,
        ),
        "attempt A's signature on attempt B's URL": (path_b, form, good),
        "signed for the URL with a trailing slash": (
            path_a,
            form,
            compute_signature(auth_token, url_a + "/", form),
        ),
        "signed for the URL with a query string": (
            path_a,
            form,
            compute_signature(auth_token, url_a + "?attempt=" + attempt_b, form),
        ),
        "signed without the query string it is sent with": (path_a + "?x=1", form, good),
        "signed for another host": (
            path_a,
            form,
            compute_signature(auth_token, url_a.replace("127.0.0.1", "evil.example"), form),
        ),
        "no signature header": (path_a, form, None),
        "empty signature header": (path_a, form, ""),
        "not a signature": (path_a, form, "bm90IGEgc2lnbmF0dXJl"),
        "signed with another auth token": (
            path_a,
            form,
            compute_signature("not-" + auth_token, url_a, form),
        ),
    }
    with stack.api() as c:
        for name, (path, data, signature) in forgeries.items():
            headers = {} if signature is None else {"X-Twilio-Signature": signature}
            r = c.post(path, data=data, headers=headers)
            assert r.status_code == 403, (name, r.status_code, r.text)
            assert r.headers["content-type"] == "application/problem+json", name
            assert r.json()["code"] == "invalid_signature", (name, r.text)
            assert stored() == [], name
    assert stored() == []
    assert counts() == before

    # Positive control: the same request, correctly signed, is accepted and stored.
    with stack.api() as c:
        r = c.post(path_a, data=form, headers={"X-Twilio-Signature": good})
    assert r.status_code == 204, r.text
    assert stored() == [
        {
            "attempt_id": attempt_a,
            "provider_message_id": sid,
            "provider_status": "sent",
            "source": "callback",
            "payload": form,
        }
    ]
    # ... and applied: once its event exists, any receipt a forgery had slipped into the
    # inbox (earlier, so applied first) would have its event too. There is exactly one.
    deadline = time.monotonic() + 10
    while not events() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert events() == [
        {
            "attempt_id": attempt_a,
            "provider_status": "sent",
            "error_code": "provider_message_id_mismatch",
        }
    ]
    assert stack.sql(
        "SELECT count(*) AS n FROM private.receipt_queue q JOIN app.receipts r ON r.id = q.receipt_id"
        " WHERE starts_with(r.provider_message_id, %s)",
        (sid,),
    ) == [{"n": 0}]
    after = counts()
    assert after == {"receipts": before["receipts"] + 1, "events": before["events"] + 1}
    # A late 'sent' moves nothing back: both messages are still delivered.
    statuses = stack.sql(
        "SELECT m.status FROM app.messages m"
        "  JOIN app.message_attempts a ON a.message_id = m.id WHERE a.id = ANY(%s::uuid[])",
        ([attempt_a, attempt_b],),
    )
    assert sorted(row["status"] for row in statuses) == ["delivered", "delivered"]


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


def test_the_worker_uses_the_provider_the_attempt_names(
    stack: Stack, tenant: dict[str, Any]
) -> None:
    # An attempt routed to a provider this worker has no adapter for is not sent through
    # Twilio regardless: the error goes to SQL (record_send_error), which retries it.
    body = f"routed elsewhere {uuid.uuid4()}"
    with psycopg.connect(stack.owner_dsn, row_factory=dict_row) as conn:  # one transaction
        row = conn.execute(
            "SELECT private.submit_message(%s, NULL, %s, NULL) AS m",
            (tenant["tenant"]["id"], Jsonb({"to": "+14155550123", "body": body})),
        ).fetchone()
        assert row is not None
        message = row["m"]["message"]
        conn.execute(
            "UPDATE app.message_attempts SET provider = 'vonage' WHERE message_id = %s",
            (message["id"],),
        )
    deadline = time.monotonic() + 20
    events: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not events:
        events = stack.sql(
            "SELECT error_code, details FROM app.message_events"
            " WHERE message_id = %s AND event_type = 'send_error'",
            (message["id"],),
        )
        time.sleep(0.1)
    assert events, "no send_error event"
    assert events[0]["error_code"] == "vonage:provider_not_configured"
    assert [m for m in stack.carrier_ledger() if m["body"] == body] == []
    (attempt,) = stack.sql(
        "SELECT status, claim_count FROM app.message_attempts WHERE message_id = %s",
        (message["id"],),
    )
    # Never called: pending again (nothing was sent), a retry is scheduled; SQL decides
    # when it fails.
    assert attempt["status"] == "pending"


def test_concurrent_single_posts_each_get_their_own_answer(
    stack: Stack, tenant: dict[str, Any]
) -> None:
    """The API gathers concurrent single POSTs of a key into one transaction
    (api/submit.py): each caller still gets its own message or its own problem, keys
    replay, and every accepted message is delivered and audited on its own."""
    from concurrent.futures import ThreadPoolExecutor

    token = tenant["api_key"]["token"]
    tag = uuid.uuid4().hex[:8]
    payloads: list[tuple[dict[str, Any], str | None]] = [
        ({"to": "+14155550123", "body": f"g{tag} {i}"}, None) for i in range(24)
    ]
    payloads += [({"to": "+14155550123", "body": "   "}, None)]  # its own 422
    payloads += [({"to": "+14155550124", "body": f"g{tag} keyed"}, f"k{tag}")] * 2  # one key twice

    def post(item: tuple[dict[str, Any], str | None]) -> httpx.Response:
        payload, key = item
        return send(stack, token, payload, **({"Idempotency-Key": key} if key else {}))

    with ThreadPoolExecutor(max_workers=len(payloads)) as pool:
        answers = list(pool.map(post, payloads))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [201] * 26 + [422], statuses
    replays = [r.headers.get("Idempotent-Replayed") for r in answers[25:]]
    assert sorted(replays, key=str) == [None, "true"], replays
    assert answers[24].json()["code"] == "empty_body"
    keyed = {r.json()["id"] for r in answers[25:]}
    assert len(keyed) == 1, "the same key twice made one message"
    ids = {r.json()["id"] for r in answers if r.status_code in (200, 201)}
    assert len(ids) == 25
    for message_id in ids:
        done = stack.wait_message(token, message_id, {"delivered", "undelivered", "failed"})
        assert done["status"] == "delivered"
    rows = stack.sql(
        "SELECT count(*) AS n FROM app.audit_log WHERE action = 'message.submit' AND target_id = ANY(%s)",
        (list(ids),),
    )
    assert rows[0]["n"] == 25
