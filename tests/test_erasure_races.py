"""An erasure racing a claim batch (issue 19: "erasure and the claim take address and
attempt locks in opposite orders"). The claim locks its attempts (id order), then the
recipients' addresses; the erasure takes them in the same order, so neither ever waits
for the other while holding what the other needs: no deadlock, both finish.

Deterministic: a third session holds the attempt's row lock; the claim queues on it
first, then the erasure starts; when the holder commits, the claim gets the attempt and
goes on to the address lock. An erasure that had taken the address lock first (the old
order) now waits for the attempt the claim holds while the claim waits for its address:
PostgreSQL's deadlock detector kills one of them.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.conftest import TEST_POLICY


@pytest.fixture
def tenant(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute(
        "SELECT private.create_tenant(NULL, 'Erasure Race', 'test', '+15005550006')"
    ).fetchone()
    assert row is not None
    tenant_id = str(row[0]["tenant"]["id"])
    conn.execute("SELECT private.set_tenant_policy(%s, NULL, %s)", (tenant_id, Jsonb(TEST_POLICY)))
    return tenant_id


def _pending_attempts(conn: psycopg.Connection[Any], tenant: str, to: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        row = conn.execute(
            "SELECT private.submit_message(%s, NULL, %s) -> 'message' ->> 'id'",
            (tenant, Jsonb({"to": to, "body": f"race {i}"})),
        ).fetchone()
        assert row is not None and row[0] is not None
        a = conn.execute(
            "SELECT id FROM app.message_attempts WHERE message_id = %s", (row[0],)
        ).fetchone()
        assert a is not None
        ids.append(str(a[0]))
    return sorted(ids)


def _wait_blocked(conn: psycopg.Connection[Any], app: str, timeout: float = 10) -> None:
    """Until the session named ``app`` waits for a lock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = %s AND wait_event_type = 'Lock'",
            (app,),
        ).fetchone()
        if row and row[0]:
            return
        time.sleep(0.01)
    raise AssertionError(f"{app} never waited for a lock")


def test_an_erasure_racing_a_claim_batch_never_deadlocks(
    db_dsn: str, conn: psycopg.Connection[Any], tenant: str
) -> None:
    to = "+14155557311"
    attempts = _pending_attempts(conn, tenant, to, 3)
    results: dict[str, Any] = {}

    def run(name: str, sql: str, params: tuple[Any, ...]) -> None:
        try:
            with psycopg.connect(db_dsn, autocommit=True, application_name=name) as c:
                row = c.execute(sql, params).fetchone()
                results[name] = row[0] if row else None
        except psycopg.Error as exc:
            results[name] = exc

    with psycopg.connect(db_dsn) as holder:  # not autocommit: keeps the row locks
        holder.execute("SELECT private.lock_attempts(%s::uuid[])", (attempts,))
        claim = threading.Thread(
            target=run,
            args=("race-claim", "SELECT app.claim_attempts(%s::uuid[])", (attempts,)),
        )
        claim.start()
        _wait_blocked(conn, "race-claim")
        erasure = threading.Thread(
            target=run,
            args=(
                "race-erasure",
                "SELECT private.erase_addresses(%s, NULL, %s)",
                (tenant, Jsonb([to])),
            ),
        )
        erasure.start()
        _wait_blocked(conn, "race-erasure")
        holder.commit()
    claim.join(timeout=30)
    erasure.join(timeout=30)
    assert not claim.is_alive() and not erasure.is_alive()
    errors = {k: v for k, v in results.items() if isinstance(v, BaseException)}
    assert errors == {}, errors
    assert results["race-erasure"]["erased"] == 1
    # The claim came first (it queued first): it handed the attempts to the worker; the
    # erasure that followed still redacted them.
    left = conn.execute(
        "SELECT count(*) FROM app.message_attempts WHERE tenant_id = %s AND to_address = %s",
        (tenant, to),
    ).fetchone()
    assert left == (0,)
