"""The workers' only door to the database: one call per ``app.*`` function."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from hermes.sqlcall import call


class Commands:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def _call(self, sql: str, params: tuple[Any, ...]) -> dict[str, Any]:
        return cast(dict[str, Any], await call(self.pool, sql, params))

    async def claim_attempt(self, attempt_id: str) -> dict[str, Any]:
        return await self._call("SELECT app.claim_attempt(%s) AS r", (attempt_id,))

    async def reconcile_attempt(
        self, attempt_id: str, claim_no: int, candidates: list[dict[str, str | None]]
    ) -> dict[str, Any]:
        return await self._call(
            "SELECT app.reconcile_attempt(%s, %s, %s) AS r",
            (attempt_id, claim_no, Jsonb(candidates)),
        )

    async def record_handoff(
        self, attempt_id: str, provider_message_id: str, provider_status: str
    ) -> dict[str, Any]:
        return await self._call(
            "SELECT app.record_handoff(%s, %s, %s) AS r",
            (attempt_id, provider_message_id, provider_status),
        )

    async def record_send_error(
        self,
        attempt_id: str,
        claim_no: int,
        code: str,
        message: str,
        http_status: int | None,
        retry_after: timedelta | None = None,
    ) -> dict[str, Any]:
        return await self._call(
            "SELECT app.record_send_error(%s, %s, %s, %s, %s, %s) AS r",
            (attempt_id, claim_no, code, message, http_status, retry_after),
        )

    async def run_maintenance(self) -> dict[str, Any]:
        return await self._call("SELECT app.run_maintenance() AS r", ())
