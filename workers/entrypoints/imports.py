"""The import jobs (#5): ``import_parse`` (one per chunk of an import's rows) and
``import_merge`` (one per import). What happens is decided in SQL
(db/functions/app/imports.sql); this module moves rows between the database and the
pure parser (hermes/imports/parse.py).

PARSE, per batch of rows of the chunk, in one transaction: read the landed rows
(app.import_file_rows), parse them in a thread (CPU work, off the event loop that keeps
the job's heartbeat), COPY the extractions into the staging table
(app.begin_extractions) and keep them (app.record_extractions). A crashed job is
re-picked by pgqueuer once its heartbeat is stale and resumes after the chunk's last
kept row (app.import_parse_plan). The chunk that completes the file enqueues MERGE.

MERGE, in one transaction: app.run_import_merge. A worker killed before the commit
leaves nothing merged; the re-picked job merges the whole import again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any

import orjson
from psycopg_pool import AsyncConnectionPool

from hermes.imports.parse import Context, Extraction, parse_row, resolve_columns
from hermes.logmask import mask_text
from hermes.sqlcall import call, call_on
from workers.failpoints import failpoint

log = logging.getLogger("hermes.worker.imports")

# Rows per PARSE transaction.
BATCH_ROWS = 5_000
# MERGE's bound: far past the role's 60 s, still an end for a merge that hangs.
MERGE_STATEMENT_TIMEOUT = "1h"

_STAGING_COLUMNS = (
    "row_number, first_name, last_name, name_norm, phones, emails, line1, city, region, "
    "postal_code, country, external_system, external_id, vertical, confidence, observed_at, "
    "rejected, rejected_detail, sender"
)
_STAGING_TYPES = [
    "int8", "text", "text", "text", "text[]", "text[]", "text", "text", "text",
    "text", "text", "text", "text", "text", "float4", "timestamptz", "text", "text", "text",
]  # fmt: skip


def _parse_batch(rows: Sequence[tuple[int, str, str | None]], ctx: Context) -> list[Extraction]:
    return [parse_row(n, orjson.loads(payload), error, ctx) for n, payload, error in rows]


class ImportJobs:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def parse(self, payload: bytes | None) -> None:
        job = json.loads(payload or b"{}")
        import_id, first, last = int(job["import_id"]), int(job["first_row"]), int(job["last_row"])
        plan = await call(
            self.pool, "SELECT app.import_parse_plan(%s, %s, %s) AS r", (import_id, first, last)
        )
        if plan["action"] == "none":
            log.info("import %s rows %s-%s: nothing to do (%s)", import_id, first, last, plan)
            return
        ctx = Context(
            columns=resolve_columns(plan["header"], plan["mapping"], plan["kind"]),
            default_country=plan["default_country"],
            observed_at=plan["observed_at"],
            version=plan["parser_version"],
        )
        start, end = int(plan["from_row"]), int(plan["to_row"])
        while True:
            stop = min(start + BATCH_ROWS - 1, end)
            result = await self._batch(import_id, start, stop, ctx)
            await failpoint("import_after_parse_batch")
            start = stop + 1
            if start > end or result["status"] != "parsing":
                log.info("import %s rows %s-%s parsed: %s", import_id, first, last, result)
                return

    async def _batch(self, import_id: int, start: int, stop: int, ctx: Context) -> dict[str, Any]:
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "SELECT row_number, payload::text, error FROM app.import_file_rows(%s, %s, %s)",
                (import_id, start, stop),
            )
            rows = await cur.fetchall()
            extractions = await asyncio.to_thread(_parse_batch, rows, ctx)
            await conn.execute("SELECT app.begin_extractions()")
            async with conn.cursor().copy(
                f"COPY pg_temp.import_extracted ({_STAGING_COLUMNS}) FROM STDIN".encode()
            ) as copy:
                copy.set_types(_STAGING_TYPES)
                for extraction in extractions:
                    await copy.write_row(extraction)
            result: dict[str, Any] = await call_on(
                conn, "SELECT app.record_extractions(%s, %s) AS r", (import_id, ctx.version)
            )
            return result

    async def merge(self, payload: bytes | None) -> None:
        import_id = int(json.loads(payload or b"{}")["import_id"])
        while True:
            async with self.pool.connection() as conn, conn.transaction():
                # One statement merges the whole import (a universe kind): it runs past
                # hermes_worker's statement_timeout (0025.review-fixes), up to this.
                await conn.execute(f"SET LOCAL statement_timeout = '{MERGE_STATEMENT_TIMEOUT}'")
                # ... and it waits for another merge of the tenant (an advisory lock)
                # longer than the role's lock_timeout allows: as long as that one runs.
                await conn.execute(f"SET LOCAL lock_timeout = '{MERGE_STATEMENT_TIMEOUT}'")
                result = await call_on(conn, "SELECT app.run_import_merge(%s) AS r", (import_id,))
                # A kill here (the crash test) loses the transaction: nothing half-merged.
                await failpoint("import_before_merge_commit")
            # The compliance kinds merge a bounded part a transaction: on to the next.
            if result.get("action") != "partial":
                break
        log.info("import %s merged: %s", import_id, result)

    async def failed(self, payload: bytes | None, stage: str, exc: BaseException) -> None:
        """A job of ``stage`` failed unexpectedly: counted in SQL, which fails the import
        at the third failure (app.record_import_failure); the job is then held."""
        import_id = int(json.loads(payload or b"{}")["import_id"])
        result = await call(
            self.pool,
            "SELECT app.record_import_failure(%s, %s, %s) AS r",
            (import_id, stage, f"{type(exc).__name__}: {mask_text(exc)}"[:500]),
        )
        log.error("import %s: %s failed (%s): %s", import_id, stage, result, mask_text(exc))
