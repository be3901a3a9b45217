"""Batch intake (POST /v1/messages/batch) and batched workers, end to end."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.system.conftest import Stack

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.fixture(scope="module")
def token(stack: Stack) -> str:
    return str(stack.new_tenant("Batchy")["api_key"]["token"])


def _count(stack: Stack, tag: str) -> int:
    rows = stack.sql("SELECT count(*) AS n FROM app.messages WHERE body LIKE %s", (f"{tag}%",))
    return int(rows[0]["n"])


def _wait_terminal(stack: Stack, ids: list[str], timeout: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        rows = stack.sql(
            "SELECT id::text, status, completed_at FROM app.messages WHERE id = ANY(%s::uuid[])",
            (ids,),
        )
        if len(rows) == len(ids) and all(r["completed_at"] is not None for r in rows):
            return rows
        if time.monotonic() > deadline:
            open_ = [r for r in rows if r["completed_at"] is None]
            raise AssertionError(f"{len(open_)} of {len(ids)} not terminal: {open_[:3]}")
        time.sleep(0.1)


def test_batch_accepts_the_valid_items_and_reports_each_invalid_one(
    stack: Stack, token: str
) -> None:
    tag = f"batch-mixed {uuid.uuid4().hex[:8]}"
    fixture = json.loads((FIXTURES / "payloads" / "batch_mixed.json").read_text())
    items: list[Any] = [
        dict(m, body=m["body"].replace("{tag}", tag)) if isinstance(m, dict) else m
        for m in fixture["messages"]
    ]
    with stack.api(token) as c:
        r = c.post("/v1/messages/batch", json={"messages": items})
    assert r.status_code == 200, r.text
    body = r.json()
    results = body["results"]
    assert [x["index"] for x in results] == list(range(len(items)))
    got = [
        {"status": x["status"], "to": x["message"]["to"]}
        if x["status"] == 201
        else {"status": x["status"], "code": x["problem"]["code"]}
        for x in results
    ]
    assert got == fixture["expected"]
    assert results[1]["problem"]["instance"].endswith("/v1/messages/batch#/messages/1")
    assert results[5]["message"]["to"] == "+14155550104"
    assert (body["accepted"], body["replayed"], body["rejected"]) == (2, 0, 5)
    assert _count(stack, tag) == 2
    ids = [x["message"]["id"] for x in results if x["status"] == 201]
    assert {r["status"] for r in _wait_terminal(stack, ids)} == {"delivered"}


def test_replayed_batch_with_item_keys_creates_nothing_new(stack: Stack, token: str) -> None:
    tag = f"batch-replay {uuid.uuid4().hex[:8]}"
    items = [
        {"to": f"+1415555{i:04d}", "body": f"{tag} {i}", "idempotency_key": f"{tag}-{i}"}
        for i in range(50)
    ]
    with stack.api(token) as c:
        first = c.post("/v1/messages/batch", json={"messages": items})
        assert first.status_code == 200, first.text
        assert first.json()["accepted"] == 50
        again = c.post("/v1/messages/batch", json={"messages": items})
        # One key reused with another request: that item alone is a conflict.
        changed = [dict(items[0], body=f"{tag} changed"), items[1]]
        conflict = c.post("/v1/messages/batch", json={"messages": changed})
    assert again.status_code == 200, again.text
    replay = again.json()
    assert (replay["accepted"], replay["replayed"], replay["rejected"]) == (0, 50, 0)
    assert all(x["status"] == 200 and x["replayed"] for x in replay["results"])
    assert [x["message"]["id"] for x in replay["results"]] == [
        x["message"]["id"] for x in first.json()["results"]
    ]
    assert _count(stack, tag) == 50
    # Nothing new: one attempt and one 'accepted' event (written with its job) each.
    counts = stack.sql(
        "SELECT count(DISTINCT a.id) AS attempts, count(DISTINCT e.id) AS accepted"
        "  FROM app.messages m JOIN app.message_attempts a ON a.message_id = m.id"
        "  LEFT JOIN app.message_events e ON e.message_id = m.id AND e.event_type = 'accepted'"
        " WHERE m.body LIKE %s",
        (f"{tag}%",),
    )[0]
    assert (counts["attempts"], counts["accepted"]) == (50, 50), "a replay enqueued nothing"
    assert [x["status"] for x in conflict.json()["results"]] == [409, 200]
    assert conflict.json()["results"][0]["problem"]["code"] == "idempotency_key_reused"
    assert _count(stack, tag) == 50


def test_oversized_batches_are_413_problems(stack: Stack, token: str) -> None:
    tag = f"batch-big {uuid.uuid4().hex[:8]}"
    items = [{"to": "+14155550100", "body": f"{tag} {i}"} for i in range(1001)]
    with stack.api(token) as c:
        r = c.post("/v1/messages/batch", json={"messages": items})
        assert r.status_code == 413, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "batch_too_large"
        huge = c.post(
            "/v1/messages/batch",
            content=b'{"messages": [' + b'"' + b"x" * (17 * 1024 * 1024) + b'"]}',
            headers={"content-type": "application/json"},
        )
        assert huge.status_code == 413
        assert huge.json()["code"] == "payload_too_large"
        empty = c.post("/v1/messages/batch", json={"messages": []})
        assert empty.status_code == 422
        assert empty.json()["code"] == "empty_batch"
    assert _count(stack, tag) == 0


def test_a_full_batch_is_delivered_once_each_by_two_batched_workers(
    stack: Stack, token: str
) -> None:
    """1,000 messages in one request: two workers claim overlapping batches of the
    same jobs' queue; every message is delivered and the carrier got each once."""
    tag = f"batch-full {uuid.uuid4().hex[:8]}"
    items = [{"to": f"+1628555{i:04d}", "body": f"{tag} {i}"} for i in range(1000)]
    with stack.api(token) as c:
        r = c.post("/v1/messages/batch", json={"messages": items}, timeout=60)
    assert r.status_code == 200, r.text
    ids = [x["message"]["id"] for x in r.json()["results"]]
    assert len(ids) == 1000
    rows = _wait_terminal(stack, ids, timeout=90)
    assert Counter(r["status"] for r in rows) == {"delivered": 1000}
    creates = Counter(m["body"] for m in stack.carrier_ledger() if m["body"].startswith(tag))
    assert len(creates) == 1000 and set(creates.values()) == {1}
    claims = stack.sql(
        "SELECT max(claim_count) AS most, count(*) FILTER (WHERE claim_count <> 1) AS other"
        "  FROM app.message_attempts WHERE message_id = ANY(%s::uuid[])",
        (ids,),
    )[0]
    assert (claims["most"], claims["other"]) == (1, 0)
    # One claimed event per attempt: no attempt was claimed twice.
    claimed = stack.sql(
        "SELECT count(*) AS n FROM app.message_events WHERE event_type = 'claimed'"
        "   AND message_id = ANY(%s::uuid[])",
        (ids,),
    )[0]["n"]
    assert claimed == 1000


def test_unrepresentable_json_is_a_4xx_problem_not_a_500(stack: Stack, token: str) -> None:
    """A lone surrogate cannot be stored as text: the batch is refused with a problem
    (nothing written), not a 500. An integer past 64 bits reaches the per-item check."""
    before = stack.sql("SELECT count(*) AS n FROM app.messages")[0]["n"]
    surrogate = b'{"messages": [{"to": "+14155550100", "body": "lone \\ud800 surrogate"}]}'
    huge = b'{"messages": [{"to": 123456789012345678901234567890, "body": "x"}]}'
    with stack.api(token) as c:
        r = c.post(
            "/v1/messages/batch", content=surrogate, headers={"content-type": "application/json"}
        )
        assert 400 <= r.status_code < 500, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        r = c.post("/v1/messages/batch", content=huge, headers={"content-type": "application/json"})
        assert r.status_code == 200, r.text
        assert r.json()["results"][0]["problem"]["code"] == "invalid_to"
    assert stack.sql("SELECT count(*) AS n FROM app.messages")[0]["n"] == before
