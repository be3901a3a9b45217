"""The receipt inbox (app.record_receipt -> app.receipts -> app.apply_receipts):
whatever order, multiplicity and batching the receipts of an attempt arrive in,
interleaved with the worker's hand-off, the attempt and its message end exactly as
with in-order delivery. Also lost receipts (app.due_lookups / app.record_lookups)
and races between callbacks, the hand-off and appliers.

A case is a list of steps run one by one as the owner (autocommit):
  "H"         the worker records the hand-off (app.record_handoff, provider answered 'queued')
  "R:<st>"    a status callback (app.record_receipt) with provider status <st>
  "A"         app.apply_receipts()       "A1", "A2": app.apply_receipts(1), (2)
after which the inbox is drained (apply until nothing is pending) and the state read.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

from tests.conftest import TEST_POLICY, Cluster
from tests.races import race_timed

Conn = psycopg.Connection[Any]

# The real life cycles of a Twilio SMS attempt, in order.
LIFECYCLES: dict[str, tuple[str, ...]] = {
    "delivered": ("queued", "sent", "delivered"),
    "undelivered": ("queued", "sent", "undelivered"),
    "failed": ("queued", "failed"),
}
# Terminal statuses come with the provider's error code (delivered has none).
ERROR_CODES = {"undelivered": "30003", "failed": "30008"}
TERMINAL = frozenset({"delivered", "undelivered", "failed", "rejected", "unknown"})
SID = "<sid>"  # every case gets its own provider id; states are compared with it masked


# --------------------------------------------------------------------------- helpers


def _one(conn: Conn, sql: str, params: Sequence[Any] = ()) -> Any:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def _create_tenant(conn: Conn) -> str:
    result = _one(conn, "SELECT private.create_tenant(NULL, 'Inbox', 'test', '+15005550006')")
    tenant_id = str(result["tenant"]["id"])
    _one(conn, "SELECT private.set_tenant_policy(%s, NULL, %s)", (tenant_id, Jsonb(TEST_POLICY)))
    return tenant_id


@dataclass(frozen=True)
class Attempt:
    attempt_id: str
    message_id: str
    sid: str


def _new_attempt(conn: Conn, tenant: str) -> Attempt:
    """A submitted message whose attempt a worker has claimed (about to call the provider)."""
    message = _one(
        conn,
        "SELECT private.submit_message(%s, NULL, %s, NULL)",
        (tenant, Jsonb({"to": "+14155550123", "body": "inbox"})),
    )
    message_id = str(message["message"]["id"])
    attempt_id = str(
        _one(conn, "SELECT id FROM app.message_attempts WHERE message_id = %s", (message_id,))
    )
    decision = _one(conn, "SELECT app.claim_attempt(%s)", (attempt_id,))
    assert decision["action"] == "send", decision
    return Attempt(attempt_id, message_id, f"SM{uuid.uuid4().hex}")


def _handoff(conn: Conn, a: Attempt) -> Any:
    return _one(conn, "SELECT app.record_handoff(%s, %s, 'queued')", (a.attempt_id, a.sid))


def _receipt(conn: Conn, a: Attempt, status: str) -> Any:
    return _one(
        conn,
        "SELECT app.record_receipt('twilio', %s, %s, %s, %s)",
        (a.attempt_id, a.sid, status, ERROR_CODES.get(status)),
    )


def _apply(conn: Conn, limit: int = 1000) -> dict[str, Any]:
    result: dict[str, Any] = _one(conn, "SELECT app.apply_receipts(%s)", (limit,))
    return result


def _drain(conn: Conn) -> int:
    """Applies until nothing is pending; how many receipts that applied."""
    total = 0
    for _ in range(10_000):
        result = _apply(conn)
        assert not result.get("busy"), result
        if result["applied"] == 0:
            return total
        total += result["applied"]
    raise AssertionError("the receipt inbox never drained")


def _run_step(conn: Conn, a: Attempt, step: str) -> None:
    if step == "H":
        _handoff(conn, a)
    elif step.startswith("R:"):
        _receipt(conn, a, step[2:])
    elif step.startswith("A"):
        result = _apply(conn, int(step[1:] or 1000))
        assert not result.get("busy"), result
    else:
        raise ValueError(step)


@dataclass(frozen=True)
class State:
    attempt: tuple[Any, ...]  # status, provider_status, provider_message_id, error_code
    message: tuple[Any, ...]  # status, error_code, provider_message_id, completed_at IS NOT NULL


def _state(conn: Conn, a: Attempt) -> State:
    row = conn.execute(
        "SELECT a.status, a.provider_status, a.provider_message_id, a.error_code,"
        "       m.status, m.error_code, m.provider_message_id, m.completed_at IS NOT NULL"
        "  FROM app.message_attempts a"
        "  JOIN app.messages m ON m.id = a.message_id AND m.created_at = a.message_created_at"
        " WHERE a.id = %s",
        (a.attempt_id,),
    ).fetchone()
    assert row is not None
    masked = tuple(SID if v == a.sid else v for v in row)
    return State(attempt=masked[:4], message=masked[4:])


def _problems(conn: Conn, a: Attempt, lifecycle: str, received: set[str]) -> list[str]:
    """Invariants of one finished case besides its end state."""
    problems: list[str] = []
    events = conn.execute(
        "SELECT event_type, provider_status, count(*) FROM app.message_events"
        " WHERE message_id = %s AND event_type IN ('provider_status', 'handed_off')"
        " GROUP BY 1, 2",
        (a.message_id,),
    ).fetchall()
    handed_off = sum(n for kind, _s, n in events if kind == "handed_off")
    if handed_off != 1:
        problems.append(f"{handed_off} 'handed_off' events")
    statuses = {s: n for kind, s, n in events if kind == "provider_status"}
    if any(n != 1 for n in statuses.values()) or set(statuses) != received:
        problems.append(f"provider_status events {statuses}, received {sorted(received)}")
    terminal_events = [s for s in statuses if s in TERMINAL]
    if len(terminal_events) != 1:
        problems.append(f"terminal provider_status events {terminal_events}")
    stored = conn.execute(
        "SELECT provider_status, count(*) FROM app.receipts WHERE attempt_id = %s GROUP BY 1",
        (a.attempt_id,),
    ).fetchall()
    if dict(stored) != dict.fromkeys(received, 1):
        problems.append(f"inbox holds {dict(stored)}")
    status = _one(conn, "SELECT status FROM app.message_attempts WHERE id = %s", (a.attempt_id,))
    if status != LIFECYCLES[lifecycle][-1]:
        problems.append(f"attempt ends {status!r}")
    return problems


def _run_case(conn: Conn, tenant: str, steps: Sequence[str]) -> tuple[Attempt, State]:
    a = _new_attempt(conn, tenant)
    for step in steps:
        _run_step(conn, a, step)
    _drain(conn)
    return a, _state(conn, a)


def _in_order(lifecycle: str) -> list[str]:
    """How the worker and the provider would do it: hand-off, then each status once."""
    steps = ["H", "A"]
    for status in LIFECYCLES[lifecycle]:
        steps += [f"R:{status}", "A"]
    return steps


def _received(steps: Sequence[str]) -> set[str]:
    """The statuses a case gave the inbox: its callbacks and the hand-off's 'queued'."""
    return {s[2:] for s in steps if s.startswith("R:")} | ({"queued"} if "H" in steps else set())


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def inbox_conn(cluster: Cluster, make_db: Callable[[], str]) -> Iterator[Conn]:
    """One database for the many small cases of this module: each case is a new message."""
    with psycopg.connect(cluster.dsn(make_db()), autocommit=True) as c:
        yield c


@pytest.fixture(scope="module")
def inbox_tenant(inbox_conn: Conn) -> str:
    return _create_tenant(inbox_conn)


@pytest.fixture(scope="module")
def baselines(inbox_conn: Conn, inbox_tenant: str) -> dict[str, State]:
    """The in-order end state of each life cycle, and what it must be."""
    result: dict[str, State] = {}
    for lifecycle, statuses in LIFECYCLES.items():
        steps = _in_order(lifecycle)
        a, state = _run_case(inbox_conn, inbox_tenant, steps)
        assert _problems(inbox_conn, a, lifecycle, _received(steps)) == []
        final = statuses[-1]
        error = f"twilio:{ERROR_CODES[final]}" if final in ERROR_CODES else None
        assert state == State(
            attempt=(final, final, SID, error), message=(final, error, SID, True)
        ), lifecycle
        result[lifecycle] = state
    return result


# --------------------------------------------------------------------------- 1. exhaustive


def _exhaustive_cases(lifecycle: str) -> Iterator[list[str]]:
    """Every permutation of the life cycle's receipts, the whole sequence delivered 1-3
    times (so late duplicates follow), the hand-off at every position, and apply either
    after every step or only at the end."""
    statuses = LIFECYCLES[lifecycle]
    for perm in itertools.permutations(statuses):
        for reps in (1, 2, 3):
            receipts = [f"R:{s}" for s in perm] * reps
            for pos in range(len(receipts) + 1):
                steps = [*receipts[:pos], "H", *receipts[pos:]]
                yield steps
                yield [x for step in steps for x in (step, "A")]


@pytest.mark.parametrize("lifecycle", list(LIFECYCLES))
def test_every_order_ends_as_in_order(
    inbox_conn: Conn, inbox_tenant: str, baselines: dict[str, State], lifecycle: str
) -> None:
    failures: list[str] = []
    cases = 0
    for steps in _exhaustive_cases(lifecycle):
        cases += 1
        a, state = _run_case(inbox_conn, inbox_tenant, steps)
        problems = _problems(inbox_conn, a, lifecycle, _received(steps))
        if state != baselines[lifecycle]:
            problems.append(f"state {state} != in-order {baselines[lifecycle]}")
        if problems:
            failures.append(f"{' '.join(steps)}: {'; '.join(problems)}")
    assert cases > 0
    assert failures == [], f"{len(failures)}/{cases} cases differ:\n" + "\n".join(failures[:20])


# --------------------------------------------------------------------------- 2. property


@st.composite
def _random_case(draw: st.DrawFn) -> tuple[str, list[str]]:
    lifecycle = draw(st.sampled_from(list(LIFECYCLES)))
    receipts = [
        f"R:{status}"
        for status in LIFECYCLES[lifecycle]
        for _ in range(draw(st.integers(1, 3), label=f"copies of {status}"))
    ]
    receipts = draw(st.permutations(receipts))
    pos = draw(st.integers(0, len(receipts)), label="hand-off position")
    steps: list[str] = []
    for step in [*receipts[:pos], "H", *receipts[pos:]]:
        steps.append(step)
        apply = draw(st.sampled_from([None, None, "A", "A1", "A2"]), label=f"after {step}")
        if apply:
            steps.append(apply)
    return lifecycle, steps


@settings(max_examples=150, deadline=None)
@given(case=_random_case())
def test_random_sequences_end_as_in_order(
    inbox_conn: Conn, inbox_tenant: str, baselines: dict[str, State], case: tuple[str, list[str]]
) -> None:
    lifecycle, steps = case
    a, state = _run_case(inbox_conn, inbox_tenant, steps)
    assert _problems(inbox_conn, a, lifecycle, _received(steps)) == []
    assert state == baselines[lifecycle]


# --------------------------------------------------------------------------- 3. lost receipt


def _due(conn: Conn) -> list[dict[str, Any]]:
    due: list[dict[str, Any]] = _one(conn, "SELECT app.due_lookups(100)")
    return due


@pytest.mark.parametrize("overdue_by", ["handed_off_at", "setting"])
def test_lost_final_receipt_is_looked_up(conn: Conn, overdue_by: str) -> None:
    tenant = _create_tenant(conn)
    a = _new_attempt(conn, tenant)
    _handoff(conn, a)
    _receipt(conn, a, "queued")
    _receipt(conn, a, "sent")
    _drain(conn)
    assert _state(conn, a).attempt == ("handed_off", "sent", SID, None)
    assert _due(conn) == []  # handed off just now: not overdue yet

    # ... and the final callback never comes.
    if overdue_by == "handed_off_at":
        conn.execute(
            "UPDATE app.message_attempts SET handed_off_at = now() - interval '10 minutes'"
            " WHERE id = %s",
            (a.attempt_id,),
        )
    else:
        conn.execute(
            "UPDATE private.settings SET value = '0 seconds' WHERE key = 'receipt_lookup_after'"
        )
    expected = {
        "attempt_id": a.attempt_id,
        "provider": "twilio",
        "provider_message_id": a.sid,
        "provider_account_id": None,  # the deployment's account
        "environment": "test",
    }
    assert _due(conn) == [expected]
    assert _due(conn) == []  # stamped: a second worker does not look it up too

    answer = {**expected, "provider_status": "delivered"}
    assert _one(conn, "SELECT app.record_lookups(%s)", (Jsonb([answer]),)) == {"new": 1}
    assert _one(conn, "SELECT app.record_lookups(%s)", (Jsonb([answer]),)) == {"new": 0}
    _drain(conn)
    state = _state(conn, a)
    assert state.attempt == ("delivered", "delivered", SID, None)
    assert state.message == ("delivered", None, SID, True)
    assert _problems(conn, a, "delivered", {"queued", "sent", "delivered"}) == []
    source = _one(
        conn,
        "SELECT details ->> 'source' FROM app.message_events"
        " WHERE message_id = %s AND provider_status = 'delivered'",
        (a.message_id,),
    )
    assert source == "lookup"

    # Final now: never due again, even once the next lookup would be.
    conn.execute(
        "UPDATE app.message_attempts SET last_lookup_at = now() - interval '1 day',"
        " handed_off_at = now() - interval '1 day' WHERE id = %s",
        (a.attempt_id,),
    )
    assert _due(conn) == []


def test_lookup_without_news_is_repeated(conn: Conn) -> None:
    """The provider still says 'sent': nothing changes, and the attempt is due again after
    receipt_lookup_every (not before)."""
    tenant = _create_tenant(conn)
    a = _new_attempt(conn, tenant)
    _handoff(conn, a)
    _receipt(conn, a, "sent")
    _drain(conn)
    conn.execute(
        "UPDATE app.message_attempts SET handed_off_at = now() - interval '10 minutes'"
        " WHERE id = %s",
        (a.attempt_id,),
    )
    expected = {
        "attempt_id": a.attempt_id,
        "provider": "twilio",
        "provider_message_id": a.sid,
        "provider_account_id": None,  # the deployment's account
        "environment": "test",
    }
    assert _due(conn) == [expected]
    answer = {**expected, "provider_status": "sent"}
    assert _one(conn, "SELECT app.record_lookups(%s)", (Jsonb([answer]),)) == {"new": 0}
    _drain(conn)
    assert _state(conn, a).attempt == ("handed_off", "sent", SID, None)
    assert _due(conn) == []
    conn.execute(
        "UPDATE app.message_attempts SET last_lookup_at = now() - interval '11 minutes'"
        " WHERE id = %s",
        (a.attempt_id,),
    )
    assert _due(conn) == [expected]
    count = _one(
        conn, "SELECT lookup_count FROM app.message_attempts WHERE id = %s", (a.attempt_id,)
    )
    assert count == 2


# --------------------------------------------------------------------------- 4. races


@pytest.mark.parametrize("with_applier", [False, True], ids=["callbacks", "callbacks+applier"])
@pytest.mark.parametrize("lifecycle", list(LIFECYCLES))
def test_callbacks_and_handoff_at_once(
    db_dsn: str, conn: Conn, lifecycle: str, with_applier: bool
) -> None:
    """The callbacks of one attempt and its hand-off, each from its own session at once
    (and, optionally, an applier too), neither wait on each other nor change the end."""
    tenant = _create_tenant(conn)
    _, baseline = _run_case(conn, tenant, _in_order(lifecycle))
    steps = ["H"] + [f"R:{s}" for s in LIFECYCLES[lifecycle]] + (["A"] if with_applier else [])
    for _round in range(5):
        a = _new_attempt(conn, tenant)

        def step(c: Conn, i: int, a: Attempt = a) -> None:
            _run_step(c, a, steps[i])

        timed = race_timed(db_dsn, len(steps), step)
        slow = [(steps[i], round(t, 3)) for i, (_r, t) in enumerate(timed) if t > 1.0]
        assert slow == []
        _drain(conn)
        assert _state(conn, a) == baseline
        assert _problems(conn, a, lifecycle, _received(steps)) == []


def test_two_appliers_at_once(db_dsn: str, conn: Conn) -> None:
    """Two appliers at once: the second is busy (or comes after the first), never do
    they both apply a receipt."""
    tenant = _create_tenant(conn)
    for _round in range(5):
        attempts = []
        for lifecycle in itertools.islice(itertools.cycle(LIFECYCLES), 30):
            a = _new_attempt(conn, tenant)
            _handoff(conn, a)
            for status in LIFECYCLES[lifecycle]:
                _receipt(conn, a, status)
            attempts.append((lifecycle, a))
        pending = _one(conn, "SELECT count(*) FROM private.receipt_queue")
        assert pending == sum(len(LIFECYCLES[lc]) for lc, _a in attempts)  # queued once

        timed = race_timed(db_dsn, 2, lambda c, _i: _apply(c, 25))
        results = [r for r, _t in timed]
        for result in results:
            assert result.get("busy") or result["applied"] > 0 or pending <= 25, results
        # Every queued receipt applied exactly once: by one of the two, or by the drain.
        assert sum(r["applied"] for r in results) + _drain(conn) == pending
        assert _one(conn, "SELECT count(*) FROM private.receipt_queue") == 0
        duplicates = conn.execute(
            "SELECT message_id, provider_status, count(*) FROM app.message_events"
            " WHERE event_type = 'provider_status' GROUP BY 1, 2 HAVING count(*) > 1"
        ).fetchall()
        assert duplicates == []
        for lifecycle, a in attempts:
            state = _state(conn, a)
            assert state.attempt[0] == LIFECYCLES[lifecycle][-1], (lifecycle, state)
            assert _problems(conn, a, lifecycle, set(LIFECYCLES[lifecycle])) == []


def test_second_applier_is_busy_while_the_first_is_open(db_dsn: str, conn: Conn) -> None:
    """Deterministically: while one applier's transaction is open, another returns
    {busy: true} at once instead of waiting; once it commits, nothing is left twice."""
    tenant = _create_tenant(conn)
    a = _new_attempt(conn, tenant)
    _handoff(conn, a)
    for status in LIFECYCLES["delivered"]:
        _receipt(conn, a, status)
    with psycopg.connect(db_dsn) as first:  # not autocommit: holds the lock until commit
        held = _apply(first, 1)
        assert held["applied"] == 1
        start = time.monotonic()
        assert _apply(conn) == {"applied": 0, "busy": True}
        assert time.monotonic() - start < 1.0
        first.commit()
    assert _drain(conn) == 2  # 'queued' came twice (hand-off, callback): stored once
    assert _state(conn, a).attempt == ("delivered", "delivered", SID, None)
    assert _problems(conn, a, "delivered", {"queued", "sent", "delivered"}) == []
