"""kill -9 a worker mid-send. After a restart every message still reaches exactly one
terminal state, and the carrier never gets it twice without a recorded reason.

The worker pauses at a named failpoint (workers/failpoints.py) so the kill lands at a
known place; the kill itself is a real SIGKILL of a real process.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

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


@pytest.fixture(scope="module")
def crash_stack(
    cluster: Cluster,
    make_db: Callable[[], str],
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[Stack]:
    # Receipts are slow here (8 s apart), so that after a crash the re-claimed attempt
    # is resolved by looking the message up at the carrier, not by its callback (a
    # survivor's start-up can take seconds on a loaded machine).
    s = start_stack(
        cluster,
        make_db,
        tmp_path_factory.mktemp("crash"),
        workers=0,
        worker_env=crash_worker_env(provider_timeout_s=1),  # fits the 2 s lease below
        sim_env={"SIM_TWILIO_RECEIPT_DELAY_MS": "8000"},
    )
    # A claim's lease (how long a worker may still be talking to the carrier) is 60 s
    # in production; 2 s here, so the survivor takes over quickly.
    s.sql("UPDATE private.settings SET value = '2 seconds' WHERE key = 'claim_lease'")
    # Nor is a call that ended without an answer reconciled before 2 minutes; 3 s here.
    s.sql("UPDATE private.settings SET value = '3 seconds' WHERE key = 'reconcile_delay'")
    yield s
    stop_stack(s, request)


@pytest.fixture(autouse=True)
def _no_stray_workers(crash_stack: Stack) -> Iterator[None]:
    yield
    kill_stray_workers(crash_stack)


def _events(stack: Stack, message_id: str) -> list[dict[str, Any]]:
    return stack.sql(
        "SELECT event_type, details FROM app.message_events WHERE message_id = %s ORDER BY id",
        (message_id,),
    )


def _attempt(stack: Stack, message_id: str) -> dict[str, Any]:
    return stack.sql("SELECT * FROM app.message_attempts WHERE message_id = %s", (message_id,))[0]


@pytest.mark.parametrize("point", ["after_claim", "before_provider_call"])
def test_kill_after_claim_before_provider_call(crash_stack: Stack, point: str) -> None:
    """Killed before the provider call. after_claim: the calling mark (app.begin_calls)
    was never recorded, so the next claim releases the attempt and sends it, no lookup.
    before_provider_call: marked, so Hermes cannot know the call did not happen; the
    next claim looks the message up at Twilio, finds nothing and resends it."""
    stack = crash_stack
    tenant = stack.new_tenant(f"CrashA {point}")
    token = tenant["api_key"]["token"]
    body = f"crash-before-call {point} {uuid.uuid4()}"
    start_worker(stack, f"doomed-a-{point}", f"{point}=sleep:120")
    with stack.api(token) as c:
        mid = c.post("/v1/messages", json={"to": "+14155550170", "body": body}).json()["id"]
    marked = point == "before_provider_call"
    wait_for(
        lambda: (
            _attempt(stack, mid)["calling_claim_no"] == (1 if marked else None)
            and _attempt(stack, mid)["status"] == "claimed"
        ),
        15,
        f"the claim at {point}",
    )
    wait_for(lambda: sleeping_at(stack, f"doomed-a-{point}", point), 5, "the failpoint")
    if not marked:
        assert _attempt(stack, mid)["calling_claim_no"] is None  # asleep before any mark
    stack.sup.kill(f"doomed-a-{point}")
    assert [m for m in stack.carrier_ledger() if m["body"] == body] == []

    start_worker(stack, f"survivor-a-{point}")
    try:
        done = stack.wait_message(token, mid, {"delivered", "undelivered", "failed"}, timeout=60)
    finally:
        stack.sup.stop_one(f"survivor-a-{point}")
    assert done["status"] == "delivered"
    creates = [m for m in stack.carrier_ledger() if m["body"] == body]
    assert len(creates) == 1
    events = _events(stack, mid)
    types = [e["event_type"] for e in events]
    assert "reclaimed" in types
    resend = [e for e in events if e["event_type"] == "resend"]
    released = [e for e in events if e["event_type"] == "released"]
    if marked:
        assert len(resend) == 1 and not released
        assert resend[0]["details"]["reason"] == "provider_has_no_record"
    else:
        assert len(released) == 1 and not resend, "released and sent: no lookup, no resend"
        assert released[0]["details"] == {"claim_no": 1, "reason": "never_called"}
    assert _attempt(stack, mid)["claim_count"] == 2


def test_kill_after_provider_accepted_before_record(crash_stack: Stack) -> None:
    stack = crash_stack
    tenant = stack.new_tenant("CrashB")
    token = tenant["api_key"]["token"]
    body = f"crash-after-call {uuid.uuid4()}"
    start_worker(stack, "doomed-b", "after_provider_call=sleep:120")
    with stack.api(token) as c:
        mid = c.post("/v1/messages", json={"to": "+14155550171", "body": body}).json()["id"]
    wait_for(
        lambda: any(m["body"] == body for m in stack.carrier_ledger()), 15, "the carrier create"
    )
    stack.sup.kill("doomed-b")
    attempt = _attempt(stack, mid)
    assert attempt["status"] == "claimed"
    assert attempt["provider_message_id"] is None

    start_worker(stack, "survivor-b")
    try:
        done = stack.wait_message(token, mid, {"delivered", "undelivered", "failed"}, timeout=60)
    finally:
        stack.sup.stop_one("survivor-b")
    assert done["status"] == "delivered"
    creates = [m for m in stack.carrier_ledger() if m["body"] == body]
    assert len(creates) == 1, "the carrier must not be called twice"
    assert done["provider_message_id"] == creates[0]["sid"]
    types = [e["event_type"] for e in _events(stack, mid)]
    assert "reconciled" in types
    assert "resend" not in types
    # Exactly one terminal state, and it is final.
    row = stack.sql("SELECT status, completed_at FROM app.messages WHERE id = %s", (mid,))[0]
    assert row["status"] == "delivered" and row["completed_at"] is not None


@pytest.mark.parametrize("point", ["after_claim", "after_provider_call"])
def test_kill_mid_batch_leaves_every_message_recoverable(crash_stack: Stack, point: str) -> None:
    """A whole batch is in flight when the worker dies: claimed (after_claim) or
    created at the carrier but not recorded (after_provider_call). A new worker
    brings every message of the batch to one terminal state, each sent once."""
    stack = crash_stack
    tenant = stack.new_tenant(f"CrashBatch {point}")
    token = tenant["api_key"]["token"]
    tag = f"crash-batch {point} {uuid.uuid4().hex[:8]}"
    start_worker(stack, f"doomed-{point}", f"{point}=sleep:120")
    items = [{"to": f"+1415555{i:04d}", "body": f"{tag} {i}"} for i in range(20)]
    with stack.api(token) as c:
        r = c.post("/v1/messages/batch", json={"messages": items})
    assert r.status_code == 200, r.text
    ids = [x["message"]["id"] for x in r.json()["results"]]

    def claimed() -> bool:
        rows = stack.sql(
            "SELECT count(*) AS n FROM app.message_attempts"
            " WHERE message_id = ANY(%s::uuid[]) AND status = 'claimed'",
            (ids,),
        )
        return int(rows[0]["n"]) == len(ids)

    def created() -> bool:
        return bool(sum(m["body"].startswith(tag) for m in stack.carrier_ledger()) == len(ids))

    wait_for(claimed if point == "after_claim" else created, 15, f"the batch at {point}")
    stack.sup.kill(f"doomed-{point}")
    sent_before = sum(m["body"].startswith(tag) for m in stack.carrier_ledger())
    assert sent_before == (0 if point == "after_claim" else len(ids))

    start_worker(stack, f"survivor-{point}")
    try:
        for mid in ids:
            done = stack.wait_message(token, mid, {"delivered", "undelivered", "failed"}, 90)
            assert done["status"] == "delivered"
    finally:
        stack.sup.stop_one(f"survivor-{point}")
    bodies = [m["body"] for m in stack.carrier_ledger() if m["body"].startswith(tag)]
    assert sorted(bodies) == sorted(i["body"] for i in items), "each sent exactly once"
    counts = {
        r["event_type"]: r["n"]
        for r in stack.sql(
            "SELECT event_type, count(*) AS n FROM app.message_events"
            " WHERE message_id = ANY(%s::uuid[]) AND event_type IN ('resend', 'released')"
            " GROUP BY 1",
            (ids,),
        )
    }
    # after_claim: never marked as calling -> released and sent, never a resend.
    assert counts == ({"released": len(ids)} if point == "after_claim" else {})
