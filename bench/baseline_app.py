"""The baseline web app: what "a FastAPI app that writes one row" costs on this machine.

``uvicorn --factory bench.baseline_app:create_app`` with ``BENCH_BASELINE_DSN`` set.
Same stack as the command API (uvicorn with uvloop and httptools, FastAPI, a strict
pydantic model, a psycopg async pool of the API's size, autocommit), but each request
does one INSERT and nothing else: no authentication, no idempotency, no outbox.

``POST /v1/messages`` ``{"to", "body"}`` -> 201 ``{"id", "created_at"}``: one INSERT.
``POST /v1/messages/batch`` ``{"messages": [...]}`` -> 200 in the command API's batch
shape (``{"results": [{"index", "status": 201, "message": {...}}]}``): one INSERT of
all the rows.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, ConfigDict, Field

TABLE_DDL = """
CREATE TABLE IF NOT EXISTS bench_items (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  created_at  timestamptz NOT NULL DEFAULT now(),
  to_address  text NOT NULL,
  body        text NOT NULL
)
"""


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    to: str = Field(max_length=64)
    body: str = Field(max_length=20000)
    from_: str | None = Field(default=None, alias="from", max_length=64)
    idempotency_key: str | None = Field(default=None, max_length=255)


class Batch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    messages: list[Item] = Field(max_length=1000)


def create_app() -> FastAPI:
    dsn = os.environ["BENCH_BASELINE_DSN"]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = AsyncConnectionPool(
            dsn,
            min_size=int(os.environ.get("HERMES_API_POOL_MIN", "2")),
            max_size=int(os.environ.get("HERMES_API_POOL_MAX", "10")),
            kwargs={"autocommit": True, "application_name": "bench-baseline"},
            open=False,
        )
        await pool.open(wait=True, timeout=30)
        app.state.pool = pool
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/v1/messages", status_code=201)
    async def create(item: Item) -> dict[str, Any]:
        pool: AsyncConnectionPool = app.state.pool
        async with pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO bench_items (to_address, body) VALUES (%s, %s)"
                " RETURNING id::text, created_at::text",
                (item.to, item.body),
            )
            row = await cur.fetchone()
        assert row is not None
        return {"id": row[0], "created_at": row[1]}

    @app.post("/v1/messages/batch")
    async def create_batch(batch: Batch) -> dict[str, Any]:
        pool: AsyncConnectionPool = app.state.pool
        rows = [{"to": m.to, "body": m.body} for m in batch.messages]
        async with pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO bench_items (to_address, body)"
                " SELECT x->>'to', x->>'body' FROM jsonb_array_elements(%s) WITH ORDINALITY AS t(x, n)"
                " ORDER BY n RETURNING id::text, created_at::text",
                (Jsonb(rows),),
            )
            out = await cur.fetchall()
        return {
            "results": [
                {"index": i, "status": 201, "message": {"id": r[0], "created_at": r[1]}}
                for i, r in enumerate(out)
            ]
        }

    return app
