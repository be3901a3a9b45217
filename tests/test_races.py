"""Races between sessions, each step in its own connection and thread, released
together by a barrier (tests/races.py)."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.conftest import TEST_POLICY
from tests.races import race

N = 8


@pytest.fixture
def tenant(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute(
        "SELECT private.create_tenant(NULL, 'Race', 'test', '+15005550006')"
    ).fetchone()
    assert row is not None
    tenant_id = str(row[0]["tenant"]["id"])
    conn.execute("SELECT private.set_tenant_policy(%s, NULL, %s)", (tenant_id, Jsonb(TEST_POLICY)))
    return tenant_id


def _submit(conn: psycopg.Connection[Any], tenant: str, key: str | None = None) -> dict[str, Any]:
    row = conn.execute(
        "SELECT private.submit_message(%s, NULL, %s, %s)",
        (tenant, Jsonb({"to": "+14155550123", "body": "race"}), key),
    ).fetchone()
    assert row is not None
    result: dict[str, Any] = row[0]
    return result


def _attempt_of(conn: psycopg.Connection[Any], message_id: str) -> str:
    row = conn.execute(
        "SELECT id FROM app.message_attempts WHERE message_id = %s", (message_id,)
    ).fetchone()
    assert row is not None
    return str(row[0])


def test_same_idempotency_key_at_once_makes_one_message(
    db_dsn: str, conn: psycopg.Connection[Any], tenant: str
) -> None:
    results = race(db_dsn, N, lambda c, _i: _submit(c, tenant, "same-key"))
    ids = {r["message"]["id"] for r in results}
    assert len(ids) == 1
    assert sorted(r["replayed"] for r in results) == [False] + [True] * (N - 1)
    counts = conn.execute(
        "SELECT (SELECT count(*) FROM app.messages), (SELECT count(*) FROM pgqueuer.pgqueuer)"
    ).fetchone()
    assert counts == (1, 1)


def test_two_workers_claim_one_attempt(
    db_dsn: str, conn: psycopg.Connection[Any], tenant: str
) -> None:
    """Exactly one claim may call the provider; the other defers (lease) instead of
    reconciling while the first may still be mid-call."""
    attempt = _attempt_of(conn, _submit(conn, tenant)["message"]["id"])

    def claim(c: psycopg.Connection[Any], _i: int) -> dict[str, Any]:
        row = c.execute("SELECT app.claim_attempt(%s)", (attempt,)).fetchone()
        assert row is not None
        result: dict[str, Any] = row[0]
        return result

    results = race(db_dsn, N, claim)
    actions = sorted(r["action"] for r in results)
    assert actions == ["defer"] * (N - 1) + ["send"]
    row = conn.execute(
        "SELECT claim_count, status FROM app.message_attempts WHERE id = %s", (attempt,)
    ).fetchone()
    assert row == (1, "claimed")


def test_duplicate_receipts_at_once_are_applied_once(
    db_dsn: str, conn: psycopg.Connection[Any], tenant: str
) -> None:
    message_id = _submit(conn, tenant)["message"]["id"]
    attempt = _attempt_of(conn, message_id)
    conn.execute("SELECT app.claim_attempt(%s)", (attempt,))
    conn.execute("SELECT app.record_handoff(%s, 'SMrace', 'queued')", (attempt,))

    def receipt(c: psycopg.Connection[Any], i: int) -> dict[str, Any]:
        status = "delivered" if i % 2 else "sent"
        row = c.execute(
            "SELECT app.record_receipt('twilio', %s, 'SMrace', %s)", (attempt, status)
        ).fetchone()
        assert row is not None
        result: dict[str, Any] = row[0]
        return result

    results = race(db_dsn, N, receipt)
    assert sum(not r["duplicate"] for r in results) == 2  # one 'sent', one 'delivered'
    # The inbox took each status once; applying it (twice: the second finds nothing)
    # gives one event per status, the hand-off's 'queued' included.
    conn.execute("SELECT app.apply_receipts()")
    conn.execute("SELECT app.apply_receipts()")
    events = conn.execute(
        "SELECT provider_status, count(*) FROM app.message_events"
        " WHERE message_id = %s AND event_type = 'provider_status' GROUP BY 1 ORDER BY 1",
        (message_id,),
    ).fetchall()
    assert events == [("delivered", 1), ("queued", 1), ("sent", 1)]
    row = conn.execute("SELECT status FROM app.messages WHERE id = %s", (message_id,)).fetchone()
    assert row == ("delivered",)


def test_revocation_races_submits_and_wins_from_its_commit_on(
    db_dsn: str, conn: psycopg.Connection[Any], tenant: str
) -> None:
    """Sessions keep submitting with a key while another revokes it, all released
    together. Every submit is either accepted (its message exists, made by that key) or
    refused with HM401; and every submit that started after the revocation committed
    is refused: the check runs inside the command, in its own transaction, so there is
    no window between "authenticated" and "acted" (app.submit_message takes the token)."""
    key = conn.execute(
        "SELECT private.mint_api_key(%s, 'racer', ARRAY['messages:write'])", (tenant,)
    ).fetchone()
    assert key is not None
    token, key_id = key[0]["token"], key[0]["id"]
    revoked_at: list[float] = []

    def act(c: psycopg.Connection[Any], i: int) -> list[tuple[float, str]]:
        if i == 0:
            c.execute("SELECT app.revoke_api_key(%s, %s)", (token_admin, key_id))
            revoked_at.append(time.monotonic())  # after the commit (autocommit)
            return []
        outcomes: list[tuple[float, str]] = []
        for n in range(40):
            started = time.monotonic()
            try:
                c.execute(
                    "SELECT app.submit_message(%s, %s)",
                    (token, Jsonb({"to": "+14155550123", "body": f"race {i} {n}"})),
                )
                outcomes.append((started, "ok"))
            except psycopg.Error as exc:
                outcomes.append((started, exc.sqlstate or "?"))
        return outcomes

    admin = conn.execute(
        "SELECT private.mint_api_key(%s, 'keys', ARRAY['keys:write', 'messages:write'])", (tenant,)
    ).fetchone()
    assert admin is not None
    token_admin = admin[0]["token"]
    results = race(db_dsn, N, act)
    outcomes = [o for r in results for o in r]
    assert revoked_at and outcomes
    assert {status for _, status in outcomes} <= {"ok", "HM401"}
    late = [status for started, status in outcomes if started > revoked_at[0]]
    assert late and set(late) == {"HM401"}, "a submit that started after the revoke committed"
    accepted = sum(status == "ok" for _, status in outcomes)
    row = conn.execute(
        "SELECT count(*) FROM app.messages WHERE api_key_id = %s", (key_id,)
    ).fetchone()
    assert row == (accepted,), "every accepted submit is a message of that key, no other"


def test_lock_attempt_blocks_other_sessions(
    db_dsn: str, conn: psycopg.Connection[Any], tenant: str
) -> None:
    attempt = _attempt_of(conn, _submit(conn, tenant)["message"]["id"])
    with psycopg.connect(db_dsn) as holder, psycopg.connect(db_dsn) as other:
        holder.execute("SELECT private.lock_attempt(%s)", (attempt,))
        with pytest.raises(psycopg.errors.LockNotAvailable):
            other.execute(
                "SELECT 1 FROM app.message_attempts WHERE id = %s FOR UPDATE NOWAIT", (attempt,)
            )
        other.rollback()
        holder.rollback()
        row = other.execute(
            "SELECT 1 FROM app.message_attempts WHERE id = %s FOR UPDATE NOWAIT", (attempt,)
        ).fetchone()
        assert row == (1,)
