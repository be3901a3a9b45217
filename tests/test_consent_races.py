"""The cardinal rule under races, with real concurrent sessions (tests/races.py): an
opt-out that commits before a claim always wins, and one racing it is serialized with
it by the address lock -- whichever commits first provably came first.

Each test runs many trials and counts violations (it must find none); the counts are
printed so that a run shows how hard the rule was tried (pytest -s).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.conftest import TEST_POLICY
from tests.races import race

TRIALS = 60


@pytest.fixture
def tenant(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute(
        "SELECT private.create_tenant(NULL, 'Consent Race', 'test', '+15005550006')"
    ).fetchone()
    assert row is not None
    tenant_id = str(row[0]["tenant"]["id"])
    conn.execute("SELECT private.set_tenant_policy(%s, NULL, %s)", (tenant_id, Jsonb(TEST_POLICY)))
    return tenant_id


def _pending_attempt(conn: psycopg.Connection[Any], tenant: str, to: str) -> str:
    row = conn.execute(
        "SELECT private.submit_message(%s, NULL, %s) -> 'message' ->> 'id'",
        (tenant, Jsonb({"to": to, "body": "race"})),
    ).fetchone()
    assert row is not None and row[0] is not None
    attempt = conn.execute(
        "SELECT id FROM app.message_attempts WHERE message_id = %s", (row[0],)
    ).fetchone()
    assert attempt is not None, "the message was not accepted"
    return str(attempt[0])


def _opt_out(conn: psycopg.Connection[Any], tenant: str, to: str) -> None:
    row = conn.execute(
        "SELECT private.record_consents(%s, NULL, %s) -> 0 ->> 'status'",
        (tenant, Jsonb([{"address": to, "kind": "opt_out", "channel": "sms"}])),
    ).fetchone()
    assert row == ("201",)


def _opt_out_against_claim(
    db_dsn: str, tenant: str, to: str, attempt: str, trial: int
) -> dict[str, Any]:
    """One trial: an opt-out of ``to`` and a claim of ``attempt`` in two sessions released
    together (tests/races.py), each after a small delay that varies with the trial (so
    that either may go first). Returns when the opt-out committed, when the claim started
    and its action."""
    marks: dict[str, Any] = {}

    def step(c: psycopg.Connection[Any], i: int) -> None:
        if i == 0:
            time.sleep((trial % 8) * 0.002)
            _opt_out(c, tenant, to)
            marks["opt_out_committed"] = time.monotonic()
        else:
            time.sleep(((trial + 3) % 4) * 0.001)
            marks["claim_started"] = time.monotonic()
            row = c.execute("SELECT app.claim_attempt(%s) ->> 'action'", (attempt,)).fetchone()
            marks["claim"] = row[0] if row else None

    race(db_dsn, 2, step)
    return marks


def test_an_opt_out_racing_a_claim_is_serialized_with_it(
    db_dsn: str, conn: psycopg.Connection[Any], tenant: str
) -> None:
    """Per trial: a fresh recipient with a pending attempt; one session records its
    opt-out while another claims the attempt, released together. A claim that started
    after the opt-out had committed must not send; and when a claim sends, the opt-out
    must have been recorded after the claim committed (it waited for the address lock)."""
    violations: list[str] = []
    sent = refused = 0
    for trial in range(TRIALS):
        to = f"+1415556{trial:04d}"
        attempt = _pending_attempt(conn, tenant, to)
        marks = _opt_out_against_claim(db_dsn, tenant, to, attempt, trial)

        action = marks["claim"]
        assert action in ("send", "skip"), action
        if action == "send":
            sent += 1
            if marks["claim_started"] > marks["opt_out_committed"]:
                violations.append(f"trial {trial}: claim started after the opt-out committed, sent")
            row = conn.execute(
                """SELECT (SELECT min(recorded_at) FROM app.consent_events WHERE address = %s)
                          > (SELECT created_at FROM app.message_events
                              WHERE attempt_id = %s AND event_type = 'claimed')""",
                (to, attempt),
            ).fetchone()
            if row != (True,):
                violations.append(
                    f"trial {trial}: sent, but the opt-out was recorded before the claim"
                )
        else:
            refused += 1
            row = conn.execute(
                "SELECT m.status, m.error_code FROM app.messages m JOIN app.message_attempts a"
                " ON a.message_id = m.id WHERE a.id = %s",
                (attempt,),
            ).fetchone()
            if row != ("rejected", "opted_out"):
                violations.append(f"trial {trial}: skipped but the message is {row}")
        # Either way, nothing may be sent from now on.
        row = conn.execute(
            "SELECT eligible FROM private.check_send_eligibility(%s, 'sms', %s)", (tenant, to)
        ).fetchone()
        assert row == (False,)
    print(
        f"opt-out vs claim: {TRIALS} trials, {sent} sent before the opt-out, "
        f"{refused} refused, {len(violations)} violations"
    )
    assert violations == []
    assert sent + refused == TRIALS


def test_an_opt_out_while_a_claim_holds_the_lock_waits_for_it(
    db_dsn: str, conn: psycopg.Connection[Any], tenant: str
) -> None:
    """Deterministic: a claim transaction that has locked the address makes the opt-out
    wait until it commits; a claim begun after the opt-out committed refuses."""
    to = "+14155557000"
    first = _pending_attempt(conn, tenant, to)
    second = _pending_attempt(conn, tenant, to)
    done = threading.Event()
    with psycopg.connect(db_dsn) as claimer:  # not autocommit: holds its locks
        row = claimer.execute("SELECT app.claim_attempt(%s) ->> 'action'", (first,)).fetchone()
        assert row == ("send",)

        def opt_out() -> None:
            with psycopg.connect(db_dsn, autocommit=True) as c:
                _opt_out(c, tenant, to)
            done.set()

        t = threading.Thread(target=opt_out)
        t.start()
        assert not done.wait(0.5), "the opt-out did not wait for the claim's address lock"
        claimer.commit()
        t.join(timeout=10)
        assert done.is_set()
    row = conn.execute("SELECT app.claim_attempt(%s) ->> 'action'", (second,)).fetchone()
    assert row == ("skip",)


def test_a_claim_while_an_opt_out_holds_the_lock_waits_and_then_refuses(
    db_dsn: str, conn: psycopg.Connection[Any], tenant: str
) -> None:
    """Deterministic, the other way round: an opt-out recorded but not yet committed
    holds the address lock; a claim waits for it, and once the opt-out commits the
    claim sees it (its check reads a snapshot taken after the lock) and refuses."""
    to = "+14155557001"
    attempt = _pending_attempt(conn, tenant, to)
    result: dict[str, Any] = {}
    with psycopg.connect(db_dsn) as recorder:  # not autocommit: holds the lock
        _opt_out(recorder, tenant, to)

        def claim() -> None:
            with psycopg.connect(db_dsn, autocommit=True) as c:
                row = c.execute("SELECT app.claim_attempt(%s)", (attempt,)).fetchone()
                result["decision"] = row[0] if row else None

        t = threading.Thread(target=claim)
        t.start()
        t.join(timeout=0.5)
        assert t.is_alive(), "the claim did not wait for the opt-out's address lock"
        recorder.commit()
        t.join(timeout=10)
    decision = result["decision"]
    assert decision["action"] == "skip" and decision["reason"] == "opted_out", decision


def test_a_stop_that_waited_for_the_lock_ranks_after_the_opt_in_that_held_it(
    db_dsn: str, conn: psycopg.Connection[Any], tenant: str
) -> None:
    """Consent ranks in the order Hermes recorded it (issue 19, the review). A STOP
    (keyword opt-out) that waits for the address lock while an opt-in holds it is
    recorded after that opt-in, so it wins: its ledger id is taken under the lock. (An
    id taken before the lock would be the lower one, and the earlier opt-in would win.)"""
    to = "+14155557002"
    waiting = threading.Event()
    with psycopg.connect(db_dsn) as holder:  # not autocommit: holds the address lock
        holder.execute("SELECT private.lock_addresses(ARRAY[private.address_hash(%s)])", (to,))

        def stop() -> None:
            event = {"address": to, "kind": "opt_out", "channel": "sms", "source": "keyword"}
            with psycopg.connect(db_dsn, autocommit=True) as c:
                row = c.execute(
                    "SELECT private.record_consents(%s, NULL, %s) -> 0 ->> 'status'",
                    (tenant, Jsonb([event])),
                ).fetchone()
                assert row == ("201",)

        t = threading.Thread(target=stop)
        t.start()
        deadline = time.monotonic() + 10
        while not waiting.is_set() and time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ).fetchone()
            if row and row[0] > 0:
                waiting.set()
            else:
                time.sleep(0.01)
        assert waiting.is_set(), "the STOP did not wait for the address lock"
        row = holder.execute(
            "SELECT private.record_consents(%s, NULL, %s) -> 0 ->> 'status'",
            (tenant, Jsonb([{"address": to, "kind": "opt_in", "channel": "sms"}])),
        ).fetchone()
        assert row == ("201",)
        holder.commit()
        t.join(timeout=10)
        assert not t.is_alive()
    kinds = conn.execute(
        "SELECT array_agg(kind ORDER BY id) FROM app.consent_events WHERE address = %s", (to,)
    ).fetchone()
    assert kinds == (["opt_in", "opt_out"],), "the ledger's order is the order of recording"
    row = conn.execute(
        "SELECT eligible FROM private.check_send_eligibility(%s, 'sms', %s)", (tenant, to)
    ).fetchone()
    assert row == (False,), "the STOP recorded last is in force"


def _daytime_prefix() -> str:
    """A number prefix whose time zone is in the middle of its day now (quiet hours
    defer marketing at night): San Francisco, New York, London, Tokyo or Sydney."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    for prefix, zone in (
        ("+1415556", "America/Los_Angeles"), ("+1212556", "America/New_York"),
        ("+4420794", "Europe/London"), ("+8131234", "Asia/Tokyo"), ("+6121234", "Australia/Sydney"),
    ):  # fmt: skip
        if 10 <= datetime.now(ZoneInfo(zone)).hour <= 18:
            return prefix
    raise AssertionError("no daytime zone")  # one of them always is


def _outreach_attempt(conn: psycopg.Connection[Any], tenant: str, to: str, n: int) -> str:
    row = conn.execute(
        "SELECT private.submit_message(%s, NULL, %s) #>> '{message,id}'",
        (
            tenant,
            Jsonb({"to": to, "body": f"offer {n}", "category": "marketing", "vertical": "solar"}),
        ),
    ).fetchone()
    assert row is not None
    attempt = conn.execute(
        "SELECT id FROM app.message_attempts WHERE message_id = %s", (row[0],)
    ).fetchone()
    assert attempt is not None, "the message was not accepted"
    return str(attempt[0])


def _claimer(attempts: list[str]) -> Callable[[psycopg.Connection[Any], int], Any]:
    def claim(c: psycopg.Connection[Any], i: int) -> Any:
        row = c.execute("SELECT app.claim_attempt(%s)", (attempts[i],)).fetchone()
        assert row is not None
        return row[0]

    return claim


def test_workers_claiming_one_recipient_in_a_cooldown_hand_off_at_most_one(
    db_dsn: str, conn: psycopg.Connection[Any], tenant: str
) -> None:
    """2 to 8 workers each claim another message to the same recipient (outreach in one
    vertical, accepted before any contact) at the same moment: the address lock and the
    contact the first claim records let exactly one through; the others are refused
    with reason cooldown. 5 trials per worker count."""
    prefix = _daytime_prefix()
    violations: list[str] = []
    trials = 0
    for workers in range(2, 9):
        for trial in range(5):
            to = f"{prefix}{workers}{trial:03d}"
            attempts = [_outreach_attempt(conn, tenant, to, i) for i in range(workers)]
            decisions = race(db_dsn, workers, _claimer(attempts))
            trials += 1
            sent = [d for d in decisions if d["action"] == "send"]
            refused = [d for d in decisions if d.get("reason") == "cooldown"]
            if len(sent) != 1 or len(refused) != workers - 1:
                violations.append(
                    f"{workers} workers, trial {trial}: {[d.get('reason') or d['action'] for d in decisions]}"
                )
    print(f"cooldown claims: {trials} trials of 2-8 workers, {len(violations)} violations")
    assert violations == []


def test_an_opt_out_while_a_message_waits_for_its_retry_or_its_quiet_hours_wins(
    conn: psycopg.Connection[Any], tenant: str
) -> None:
    """A message whose first hand-off failed (retry scheduled) and one deferred by quiet
    hours: an opt-out arrives meanwhile; when their time comes, neither goes."""
    to = "+14155557002"
    retrying = _pending_attempt(conn, tenant, to)
    claim = conn.execute("SELECT app.claim_attempt(%s)", (retrying,)).fetchone()
    assert claim is not None and claim[0]["action"] == "send"
    # The worker marks the call begun (app.begin_calls), then the call times out.
    conn.execute("SELECT app.begin_calls(ARRAY[%s]::uuid[], ARRAY[1])", (retrying,))
    row = conn.execute(
        "SELECT app.record_send_error(%s, 1, 'timeout', 'no answer', NULL) ->> 'action'",
        (retrying,),
    ).fetchone()
    assert row == ("retry_scheduled",)
    # A message deferred by the tenant's narrow window (one minute that has just passed).
    conn.execute(
        "SELECT private.set_tenant_policy(%s, NULL, %s)",
        (tenant, Jsonb({"quiet_start": "08:00", "quiet_end": "08:01"})),
    )
    row = conn.execute(
        "SELECT private.submit_message(%s, NULL, %s) #> '{message}'",
        (tenant, Jsonb({"to": to, "body": "later", "category": "marketing"})),
    ).fetchone()
    assert row is not None and row[0]["status"] == "scheduled", row
    deferred = str(
        conn.execute(
            "SELECT id FROM app.message_attempts WHERE message_id = %s", (row[0]["id"],)
        ).fetchone()[0]  # type: ignore[index]
    )
    _opt_out(conn, tenant, to)
    # Their time comes: the lease and the reconcile delay ran out, the window is open.
    conn.execute(
        "UPDATE app.message_attempts SET last_claimed_at = now() - interval '1 hour', "
        "reconcile_after = now() - interval '1 second' WHERE id = %s",
        (retrying,),
    )
    conn.execute(
        "SELECT private.set_tenant_policy(%s, NULL, %s)",
        (
            tenant,
            Jsonb(
                {"quiet_start": "00:00", "quiet_end": "23:59", "default_category": "transactional"}
            ),
        ),
    )
    conn.execute(
        "UPDATE app.messages SET category = 'transactional' WHERE id = %s", (row[0]["id"],)
    )
    again = conn.execute("SELECT app.claim_attempt(%s)", (retrying,)).fetchone()
    assert again is not None and again[0]["action"] == "reconcile"
    # The provider has no record of it: the resend is refused.
    decision = conn.execute(
        "SELECT app.reconcile_attempt(%s, %s, '[]')", (retrying, again[0]["claim_no"])
    ).fetchone()
    assert decision is not None and decision[0]["action"] == "skip", decision
    assert decision[0]["reason"] == "opted_out"
    late = conn.execute("SELECT app.claim_attempt(%s)", (deferred,)).fetchone()
    assert late is not None and late[0]["action"] == "skip" and late[0]["reason"] == "opted_out", (
        late
    )
