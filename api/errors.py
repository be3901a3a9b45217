"""RFC 9457 problem details, and the mapping from Hermes's SQL errors.

SQL functions raise SQLSTATE ``HM<http status>`` with DETAIL = a stable machine code
and a HINT (see db/functions/private/raise_problem.sql); this module turns them into
``application/problem+json`` responses. A database that cannot be reached in time (the
pool is exhausted, the connection was lost, the server is shutting down) is a 503 with
Retry-After: nothing was done, the client may retry; so is a statement cut off by the
role's statement_timeout or a lock not granted within its lock_timeout. Any other
database error is a 500 whose body names no internals but carries a request id, which
the log line names too.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import psycopg
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("hermes.api")


class Problem(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str | None = None,
        *,
        retry_after: int | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(title)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.retry_after = retry_after
        self.extra = extra

    def response(self, instance: str | None = None) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        if self.status in (429, 503):
            headers = {"Retry-After": str(self.retry_after or 1)}
        return JSONResponse(
            self.body(instance), status_code=self.status, media_type=PROBLEM_JSON, headers=headers
        )

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://hermes.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "code": self.code,
        }
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


# Connection-level trouble: admin/crash shutdown, cannot connect now, connection failures.
UNAVAILABLE_SQLSTATES = ("57P01", "57P02", "57P03", "08000", "08003", "08006", "08001", "08004")


def from_db_error(exc: psycopg.Error) -> Problem:
    sqlstate = exc.sqlstate or ""
    if (
        isinstance(exc, PoolTimeout)
        or sqlstate in UNAVAILABLE_SQLSTATES
        or (isinstance(exc, psycopg.OperationalError) and not sqlstate)
    ):
        return Problem(
            503,
            "database_unavailable",
            "The database did not answer in time; nothing was done.",
            "Retry the request.",
        )
    diag = exc.diag
    if sqlstate.startswith("HM") and sqlstate[2:].isdigit():
        status = int(sqlstate[2:])
        if 400 <= status <= 599:
            return Problem(
                status,
                diag.message_detail or "error",
                diag.message_primary or "Error",
                diag.message_hint or None,
            )
    if sqlstate == "57014":
        # statement_timeout (the roles' bound, 0025.review-fixes): rolled back.
        return Problem(
            503,
            "statement_timeout",
            "The request took too long in the database; nothing was done.",
            "Retry the request later.",
        )
    if sqlstate in ("40P01", "40001", "55P03"):
        # Deadlock, serialization failure, lock not available: nothing was written.
        return Problem(
            503,
            "try_again",
            "The request collided with another; nothing was done.",
            "Retry the request.",
        )
    if sqlstate in ("22P02", "22023", "22007", "22008", "22001", "23514", "22021", "22P05"):
        # Bad values that slipped past validation (e.g. an unrepresentable character).
        return Problem(422, "invalid_value", "A value was not acceptable.")
    return Problem(500, "internal_error", "Internal error.")


async def problem_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return exc.response(request.url.path)


async def db_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, psycopg.Error)
    problem = from_db_error(exc)
    if problem.status >= 500:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        problem.extra["request_id"] = request_id
        log.error(
            "request %s: %s %s -> %d %s: %s (SQLSTATE %s)",
            request_id,
            request.method,
            request.url.path,
            problem.status,
            problem.code,
            type(exc).__name__,
            exc.sqlstate,
            exc_info=problem.status == 500,
        )
    return problem.response(request.url.path)


async def validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg"), "type": e.get("type")}
        for e in exc.errors()
    ]
    if any(e["type"] == "json_invalid" for e in errors):
        problem = Problem(400, "invalid_json", "The request body is not valid JSON.")
    elif any(e["type"] == "extra_forbidden" for e in errors):
        names = ", ".join(e["loc"][-1] for e in errors if e["type"] == "extra_forbidden")
        problem = Problem(422, "unknown_field", f"Unknown field(s): {names}.", errors=errors)
    else:
        problem = Problem(422, "invalid_request", "The request is not valid.", errors=errors)
    return problem.response(request.url.path)
