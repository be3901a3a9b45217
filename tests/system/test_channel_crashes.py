"""kill -9 a worker mid-hand-off on the channels whose providers cannot be asked about
a message: email (SES), push (FCM) and WhatsApp (Cloud API).

The worker pauses at a named failpoint (workers/failpoints.py) so the SIGKILL lands at a
known place -- ``after_claim`` (claimed, the calling mark not yet recorded),
``before_provider_call`` (marked as calling, not called) or ``after_provider_call`` (the
provider accepted it, Hermes has not recorded the hand-off) -- then a clean worker takes
over. A claim that never got its calling mark (app.begin_calls) cannot have reached the
provider: the successor releases it and sends it, once. Past the mark, none of these
providers can be asked, so a re-claimed attempt is never resent (app.reconcile_attempt):
it waits ``reconcile_window`` for a receipt. SES events and WhatsApp status webhooks carry
the attempt id, so a hand-off the dead worker never recorded is still found by its
receipts and the message delivered; FCM sends none, so an accepted push whose worker died
ends ``unknown`` -- and so does any message whose worker died between the mark and the
call (Hermes cannot tell that from dying during the call), and nothing is sent twice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Cluster
from tests.system.conftest import Stack, start_stack, stop_stack
from tests.system.crash import (
    crash_worker_env,
    kill_stray_workers,
    sleeping_at,
    start_worker,
    wait_for,
)

TERMINAL = {"delivered", "undelivered", "failed", "rejected", "unknown"}
CHANNELS = ("email", "push", "whatsapp")
POINTS = ("after_claim", "before_provider_call", "after_provider_call")
# What each kill ends in. after_claim: no calling mark -> released and sent by the
# successor: delivered, one send. before_provider_call: nothing was sent, but Hermes
# cannot tell (no lookups) -> it waits out reconcile_window for a receipt, then unknown;
# never sent. after_provider_call: the provider has it; SES's events and WhatsApp's
# statuses (tagged with the attempt id) record the hand-off and deliver it, FCM has no
# receipts -> unknown.
EXPECTED = {
    ("email", "after_claim"): "delivered",
    ("whatsapp", "after_claim"): "delivered",
    ("push", "after_claim"): "delivered",
    ("email", "before_provider_call"): "unknown",
    ("whatsapp", "before_provider_call"): "unknown",
    ("push", "before_provider_call"): "unknown",
    ("email", "after_provider_call"): "delivered",
    ("whatsapp", "after_provider_call"): "delivered",
    ("push", "after_provider_call"): "unknown",
}
# How many sends of the attempt each provider saw in the end.
SENDS = {"after_claim": 1, "before_provider_call": 0, "after_provider_call": 1}


@pytest.fixture(scope="module")
def crash_stack(
    cluster: Cluster,
    make_db: Callable[[], str],
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[Stack]:
    # Receipts 1.5 s apart: the dead worker's successor applies most of them. The
    # provider timeout is half the 4 s lease below (app.check_worker_settings refuses
    # more); the lease is set before any worker starts.
    s = start_stack(
        cluster,
        make_db,
        tmp_path_factory.mktemp("channel-crash"),
        workers=0,
        worker_env=crash_worker_env(provider_timeout_s=2),
        ses=True,
        ses_env={"SIM_SES_RECEIPT_DELAY_MS": "1500"},
        fcm=True,
        whatsapp=True,
        whatsapp_env={"SIM_WHATSAPP_RECEIPT_DELAY_MS": "1500"},
    )
    # 60 s, 10 minutes and 2 minutes in production.
    s.sql("UPDATE private.settings SET value = '4 seconds' WHERE key = 'claim_lease'")
    s.sql("UPDATE private.settings SET value = '4 seconds' WHERE key = 'reconcile_window'")
    s.sql("UPDATE private.settings SET value = '3 seconds' WHERE key = 'reconcile_delay'")
    yield s
    stop_stack(s, request)


@pytest.fixture(autouse=True)
def _no_stray_workers(crash_stack: Stack) -> Iterator[None]:
    yield
    kill_stray_workers(crash_stack)


def _payload(channel: str, tag: str) -> dict[str, Any]:
    if channel == "email":
        return {
            "channel": "email",
            "to": "success@simulator.amazonses.com",
            "subject": tag,
            "body": tag,
        }
    if channel == "push":
        # A token of its own per message: the FCM ledger does not carry the attempt id.
        return {"channel": "push", "to": f"crash-{tag[-8:]}-0123456789abcdef", "body": tag}
    return {"channel": "whatsapp", "to": "+14155550171", "body": tag}  # sent, delivered, read


def _ledger(stack: Stack, channel: str) -> list[dict[str, Any]]:
    url = {"email": stack.cfg.ses_url, "push": stack.cfg.fcm_url}.get(
        channel, stack.cfg.whatsapp_url
    )
    return list(httpx.get(f"{url}/_sim/messages").json())


def _sends(stack: Stack, channel: str, attempt_id: str, push_token: str) -> list[dict[str, Any]]:
    """The provider's accepted sends of this attempt."""
    ledger = _ledger(stack, channel)
    if channel == "email":
        return [e for e in ledger if e["tags"].get("hermes_attempt_id") == [attempt_id]]
    if channel == "push":
        return [m for m in ledger if m["token"] == push_token]
    return [m for m in ledger if m["biz_opaque_callback_data"] == attempt_id]


def _attempts(stack: Stack, message_id: str) -> list[dict[str, Any]]:
    return stack.sql(
        "SELECT id::text, status, claim_count, provider_message_id, error_code"
        " FROM app.message_attempts WHERE message_id = %s ORDER BY attempt_no",
        (message_id,),
    )


def _events(stack: Stack, token: str, message_id: str) -> list[dict[str, Any]]:
    """The message's events, through the read API (PostgREST) as the tenant sees them."""
    with stack.rest(token) as c:
        r = c.get("/message_events", params={"message_id": f"eq.{message_id}", "order": "id"})
    assert r.status_code == 200, r.text
    return list(r.json())


def _assert_one_terminal_state(stack: Stack, token: str, message_id: str, status: str) -> None:
    row = stack.sql("SELECT status, completed_at FROM app.messages WHERE id = %s", (message_id,))
    assert row[0]["status"] == status and row[0]["completed_at"] is not None, row
    # No event ever reported another end (an event's status is the message's then).
    ends = {e["status"] for e in _events(stack, token, message_id) if e["status"] in TERMINAL}
    assert ends <= {status}, f"more than one terminal state: {ends}"


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("channel", CHANNELS)
def test_kill_at_each_point_of_the_hand_off(crash_stack: Stack, channel: str, point: str) -> None:
    stack = crash_stack
    token = stack.new_tenant(f"Crash {channel} {point}")["api_key"]["token"]
    tag = f"crash {channel} {point} {uuid.uuid4().hex[:8]}"
    payload = _payload(channel, tag)
    doomed, survivor = f"doomed-{channel}-{point}", f"survivor-{channel}-{point}"
    start_worker(stack, doomed, f"{point}=sleep:120")
    with stack.api(token) as c:
        r = c.post("/v1/messages", json=payload)
    assert r.status_code == 201, r.text
    mid = r.json()["id"]
    attempt_id = _attempts(stack, mid)[0]["id"]

    def sends() -> list[dict[str, Any]]:
        return _sends(stack, channel, attempt_id, str(payload["to"]))

    if point != "after_provider_call":
        wait_for(
            lambda: (
                _attempts(stack, mid)[0]["status"] == "claimed"
                and sleeping_at(stack, doomed, point)
            ),
            20,
            "the claim",
        )
    else:
        wait_for(lambda: bool(sends()) and sleeping_at(stack, doomed, point), 20, "the send")
    stack.sup.kill(doomed)
    assert len(sends()) == (1 if point == "after_provider_call" else 0)
    if channel == "push" or point != "after_provider_call":
        # No receipt can come: the hand-off stays unrecorded until the successor decides.
        attempt = _attempts(stack, mid)[0]
        assert (attempt["status"], attempt["provider_message_id"]) == ("claimed", None)

    start_worker(stack, survivor)
    try:
        done = stack.wait_message(token, mid, TERMINAL, timeout=45)
        time.sleep(1.0)  # a late resend, had there been one, would show now
    finally:
        stack.sup.stop_one(survivor)
    expected = EXPECTED[(channel, point)]
    assert done["status"] == expected, done
    _assert_one_terminal_state(stack, token, mid, expected)

    sent = sends()
    assert len(sent) == SENDS[point], "never sent twice"
    attempts = _attempts(stack, mid)
    assert len(attempts) == 1
    events = _events(stack, token, mid)
    types = [e["event_type"] for e in events]
    assert "resend" not in types, "a provider without lookups is never resent blindly"
    released = [e for e in events if e["event_type"] == "released"]
    if point == "after_claim":
        # Never marked as calling: released (not reconciled) and sent by the successor.
        assert [r["details"] for r in released] == [{"claim_no": 1, "reason": "never_called"}]
        assert "reconcile_ambiguous" not in types
    else:
        assert not released, "a claim marked as calling is never released"
    if expected == "delivered":
        assert attempts[0]["status"] == "delivered"
        handed = [e for e in events if e["event_type"] == "handed_off"]
        # after_provider_call: the receipts (tagged with the attempt id) recorded the
        # hand-off the dead worker never did; after_claim: the successor's send did.
        want = "receipt" if point == "after_provider_call" else "worker"
        assert [h["details"]["via"] for h in handed] == [want], handed
        pmid = sent[0][{"email": "message_id", "push": "name"}.get(channel, "id")]
        assert attempts[0]["provider_message_id"] == done["provider_message_id"] == pmid
    else:
        assert (attempts[0]["status"], attempts[0]["error_code"]) == ("unknown", "handoff_unknown")
        assert attempts[0]["provider_message_id"] is None
        assert "handed_off" not in types
        assert types.count("receipt_timeout") == 1
        waits = [e for e in events if e["event_type"] == "reconcile_ambiguous"]
        assert waits and all(w["details"]["reason"] == "no_provider_lookup" for w in waits)
        assert "reclaimed" in types


def test_kill_mid_batch_of_mixed_channels(crash_stack: Stack) -> None:
    """Emails, pushes and WhatsApp messages in one batch, all accepted by their
    providers when the worker dies before recording any hand-off: each message reaches
    one terminal state (the emails and WhatsApp messages delivered by their receipts,
    the pushes unknown), and no provider got any of them twice."""
    stack = crash_stack
    token = stack.new_tenant("Crash batch")["api_key"]["token"]
    tag = uuid.uuid4().hex[:8]
    items = [
        _payload(channel, f"crash-batch {channel} {i} {tag}{i:02d}")
        for i in range(3)
        for channel in CHANNELS
    ]
    start_worker(stack, "doomed-batch", "after_provider_call=sleep:120")
    with stack.api(token) as c:
        r = c.post("/v1/messages/batch", json={"messages": items})
    assert r.status_code == 200, r.text
    ids = [x["message"]["id"] for x in r.json()["results"]]
    attempts = {mid: _attempts(stack, mid)[0]["id"] for mid in ids}

    def counts() -> list[int]:
        return [
            len(_sends(stack, item["channel"], attempts[mid], str(item["to"])))
            for mid, item in zip(ids, items, strict=True)
        ]

    wait_for(lambda: counts() == [1] * len(ids), 20, "every send of the batch")
    wait_for(lambda: sleeping_at(stack, "doomed-batch", "after_provider_call"), 5, "the failpoint")
    stack.sup.kill("doomed-batch")

    start_worker(stack, "survivor-batch")
    try:
        done = {mid: stack.wait_message(token, mid, TERMINAL, timeout=45) for mid in ids}
        time.sleep(1.0)
    finally:
        stack.sup.stop_one("survivor-batch")
    for mid, item in zip(ids, items, strict=True):
        expected = EXPECTED[(item["channel"], "after_provider_call")]
        assert done[mid]["status"] == expected, (item, done[mid])
        _assert_one_terminal_state(stack, token, mid, expected)
    assert counts() == [1] * len(ids), "each sent exactly once"
    resends = stack.sql(
        "SELECT count(*) AS n FROM app.message_events"
        " WHERE message_id = ANY(%s::uuid[]) AND event_type = 'resend'",
        (ids,),
    )[0]["n"]
    assert resends == 0
