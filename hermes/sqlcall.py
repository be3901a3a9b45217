"""The one way Python calls Hermes's SQL: ``SELECT app.fn(...) AS r``, one JSON result."""

from __future__ import annotations

import json
from typing import Any

import orjson
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import set_json_dumps, set_json_loads
from psycopg_pool import AsyncConnectionPool


def _dumps(obj: Any) -> bytes | str:
    """orjson, or the stdlib for what orjson refuses (lone surrogates, integers past 64
    bits): PostgreSQL then refuses those values with a SQLSTATE the API maps to 422,
    instead of a TypeError here becoming a 500."""
    try:
        return orjson.dumps(obj)
    except TypeError:
        return json.dumps(obj)


# JSON in and out of the database through orjson (psycopg's default is the stdlib).
set_json_loads(orjson.loads)
set_json_dumps(_dumps)

# The path of provider status callbacks: the worker gives it to the provider, the API
# serves it and rebuilds the signed URL from it.
STATUS_CALLBACK_PATH = "/v1/webhooks/{provider}/status/{attempt_id}"


def status_callback_url(public_url: str, provider: str, attempt_id: str) -> str:
    path = STATUS_CALLBACK_PATH.format(provider=provider, attempt_id=attempt_id)
    return public_url.rstrip("/") + path


# Where numbers' incoming-message webhook points (Twilio: "A message comes in"): the
# sender registry finds the tenant by the number written to. The per-tenant form (the
# older one) is an alias, checked against the registry.
INBOUND_PATH = "/v1/webhooks/{provider}/inbound"
TENANT_INBOUND_PATH = INBOUND_PATH + "/{tenant_id}"


def inbound_url(public_url: str, provider: str, tenant_id: str | None = None) -> str:
    path = INBOUND_PATH if tenant_id is None else TENANT_INBOUND_PATH
    return public_url.rstrip("/") + path.format(provider=provider, tenant_id=tenant_id)


def rolled_back_alone(exc: Exception) -> bool:
    """The server refused the statement (so its transaction was rolled back and nothing of
    it was written: retrying its items one by one cannot do anything twice), and not for
    the whole call -- a refusal of Hermes's own (HM4xx: the key, the tenant) or the
    database going away (classes 08, 57, 53). Used to isolate a poison item: a batch
    that fails so is retried item by item, and only the poison item fails."""
    state = getattr(exc, "sqlstate", None) or ""
    return bool(state) and not state.startswith(("HM", "08", "57", "53"))


async def call(pool: AsyncConnectionPool, sql: str, params: tuple[Any, ...]) -> Any:
    """Runs one statement that returns a single row with column ``r``; returns ``r``."""
    async with pool.connection() as conn:
        return await call_on(conn, sql, params)


async def call_on(conn: AsyncConnection[Any], sql: str, params: tuple[Any, ...]) -> Any:
    """:func:`call` on a connection the caller holds (a transaction of several calls)."""
    cur = await conn.cursor(row_factory=dict_row).execute(sql.encode(), params)
    row = await cur.fetchone()
    if row is None:
        raise RuntimeError(f"no row from {sql}")
    return row["r"]
