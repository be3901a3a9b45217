"""Idempotency keys and bad input on the command API: clear problem+json, nothing changed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.system.conftest import Stack


@pytest.fixture(scope="module")
def token(stack: Stack) -> str:
    t: dict[str, Any] = stack.new_tenant("Input")
    tok: str = t["api_key"]["token"]
    return tok


def _counts(stack: Stack) -> tuple[int, int, int]:
    row = stack.sql(
        "SELECT (SELECT count(*) FROM app.messages) AS m, (SELECT count(*) FROM pgqueuer.pgqueuer_log WHERE status = 'queued') AS j,"
        " (SELECT count(*) FROM app.idempotency_keys) AS k"
    )[0]
    return int(row["m"]), int(row["j"]), int(row["k"])


def test_idempotency_key_replays_first_result(stack: Stack, token: str) -> None:
    key = str(uuid.uuid4())
    payload = {"to": "+14155550150", "body": "once"}
    with stack.api(token) as c:
        first = c.post("/v1/messages", json=payload, headers={"Idempotency-Key": key})
        before = _counts(stack)
        second = c.post("/v1/messages", json=payload, headers={"Idempotency-Key": key})
        other = c.post(
            "/v1/messages", json={**payload, "body": "twice"}, headers={"Idempotency-Key": key}
        )
    assert first.status_code == 201
    assert second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json()["id"] == first.json()["id"]
    assert second.json() == first.json()
    assert other.status_code == 409
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["code"] == "idempotency_key_reused"
    assert _counts(stack) == before
    assert (
        stack.sql("SELECT count(*) AS n FROM app.messages WHERE idempotency_key = %s", (key,))[0][
            "n"
        ]
        == 1
    )


BAD = [
    ({"to": "not a number", "body": "x"}, 422, "invalid_to"),
    ({"to": "+0123456789", "body": "x"}, 422, "invalid_to"),
    ({"to": "+1415555012345678", "body": "x"}, 422, "invalid_to"),
    ({"to": "+14155550123", "body": ""}, 422, "empty_body"),
    ({"to": "+14155550123", "body": "   "}, 422, "empty_body"),
    ({"to": "+14155550123", "body": "x" * 1601}, 422, "body_too_long"),
    ({"to": "+14155550123", "body": "x", "from": "sender"}, 422, "invalid_from"),
    ({"to": "+14155550123", "body": "x", "priority": 1}, 422, "unknown_field"),
    ({"to": "+14155550123"}, 422, "invalid_body"),
    ({"to": 14155550123, "body": "x"}, 422, "invalid_request"),
    ({"to": ["+14155550123"], "body": "x"}, 422, "invalid_request"),
    ({"to": "+14155550123", "body": None}, 422, "invalid_body"),
]


@pytest.mark.parametrize(("payload", "status", "code"), BAD)
def test_bad_message_is_refused_and_changes_nothing(
    stack: Stack, token: str, payload: dict[str, Any], status: int, code: str
) -> None:
    before = _counts(stack)
    with stack.api(token) as c:
        r = c.post("/v1/messages", json=payload, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["code"] == code
    assert problem["status"] == status
    assert problem["title"]
    assert _counts(stack) == before


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b'{"to": "+14155550123", "body": ', 400, "invalid_json"),
        (b"\xff\xfe not utf-8", 400, "invalid_json"),
        (b'{"to": "+14155550123", "body": "' + b"x" * 70000 + b'"}', 413, "payload_too_large"),
        (b"[1, 2, 3]", 422, "invalid_request"),
    ],
)
def test_malformed_bodies(stack: Stack, token: str, content: bytes, status: int, code: str) -> None:
    before = _counts(stack)
    with stack.api(token) as c:
        r = c.post("/v1/messages", content=content, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == code
    assert _counts(stack) == before


def test_unknown_message_and_bad_id(stack: Stack, token: str) -> None:
    with stack.api(token) as c:
        missing = c.get(f"/v1/messages/{uuid.uuid4()}")
        bad = c.get("/v1/messages/not-a-uuid")
    assert missing.status_code == 404 and missing.json()["code"] == "message_not_found"
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_request"


def test_tenant_creation_needs_admin_and_valid_input(stack: Stack, token: str) -> None:
    with stack.api(token) as c:
        assert c.post("/v1/tenants", json={"name": "x"}).json()["code"] == "insufficient_scope"
    with stack.api(stack.admin_key) as c:
        r = c.post("/v1/tenants", json={"name": "x", "environment": "staging"})
        assert r.status_code == 422
        r = c.post("/v1/tenants", json={"name": "x", "default_sms_from": "abc"})
        assert r.status_code == 422 and r.json()["code"] == "invalid_from"
        r = c.post("/v1/tenants", json={"name": "  "})
        assert r.status_code == 422 and r.json()["code"] == "invalid_name"


def test_chunked_bodies_are_limited_while_read(stack: Stack, token: str) -> None:
    """Without Content-Length the limit is enforced on the stream, not after buffering."""

    def chunks(total: int) -> Iterator[bytes]:
        yield b'{"to": "+14155550123", "body": "'
        for _ in range(total // 1000):
            yield b"x" * 1000
        yield b'"}'

    before = _counts(stack)
    with stack.api(token) as c:
        big = c.post(
            "/v1/messages", content=chunks(200_000), headers={"Content-Type": "application/json"}
        )
        small = c.post(
            "/v1/messages", content=chunks(1000), headers={"Content-Type": "application/json"}
        )
    assert big.status_code == 413 and big.json()["code"] == "payload_too_large"
    assert small.status_code == 201, small.text
    assert small.json()["body"] == "x" * 1000
    assert _counts(stack)[0] == before[0] + 1
