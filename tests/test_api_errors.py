"""How the command API answers database trouble: a database it cannot reach in time is a
503 with Retry-After (nothing was done: retry), any other unexpected database error a
500 that names no internals; both carry a request id that the log line names too."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg_pool import PoolTimeout
from starlette.requests import Request

from api import errors


@dataclass
class Answer:
    status_code: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


def _answer(exc: Exception, headers: dict[str, str] | None = None) -> Answer:
    """The API's handler for database errors, on a real ASGI request for GET /boom."""
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/boom",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    response = asyncio.run(errors.db_error_handler(Request(scope), exc))
    return Answer(response.status_code, dict(response.headers), bytes(response.body).decode())


@pytest.mark.parametrize(
    "exc",
    [
        PoolTimeout("couldn't get a connection after 5.00 sec"),
        psycopg.OperationalError("server closed the connection unexpectedly"),
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
        psycopg.errors.CannotConnectNow("the database system is starting up"),
    ],
    ids=["pool-exhausted", "connection-lost", "admin-shutdown", "starting-up"],
)
def test_an_unreachable_database_is_a_503_with_retry_after(
    exc: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="hermes.api"):
        r = _answer(exc, {"X-Request-Id": "req-42"})
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "database_unavailable"
    assert body["request_id"] == "req-42"
    assert any("request req-42" in m for m in caplog.messages)


def test_an_unexpected_database_error_is_a_500_that_names_no_internals(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exc = psycopg.errors.DataCorrupted("could not read block 7 of relation app.messages_p2026_12")
    with caplog.at_level(logging.ERROR, logger="hermes.api"):
        r = _answer(exc)
    assert r.status_code == 500
    body = r.json()
    assert body["code"] == "internal_error"
    assert "messages_p2026_12" not in r.text and "block" not in r.text
    request_id = body["request_id"]
    assert len(request_id) == 32
    assert any(f"request {request_id}" in m for m in caplog.messages), "the log names the id"


def test_a_collision_stays_a_503_try_again() -> None:
    r = _answer(psycopg.errors.DeadlockDetected("deadlock detected"))
    assert r.status_code == 503
    assert r.json()["code"] == "try_again"


def test_a_statement_or_lock_past_the_roles_timeouts_is_a_503_with_retry_after() -> None:
    """hermes_api's statement_timeout and lock_timeout (0025.review-fixes) end a statement
    with 57014 / 55P03: rolled back, nothing done -- a 503 to retry, not a 500."""
    r = _answer(psycopg.errors.QueryCanceled("canceling statement due to statement timeout"))
    assert (r.status_code, r.json()["code"], r.headers["retry-after"]) == (
        503,
        "statement_timeout",
        "1",
    )
    r = _answer(psycopg.errors.LockNotAvailable("canceling statement due to lock timeout"))
    assert (r.status_code, r.json()["code"]) == (503, "try_again")
