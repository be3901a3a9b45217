"""The workers' only door to the database: one call per ``app.*`` function."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from hermes.accounts import CREDENTIALS_SQL, FILL_SQL
from hermes.sqlcall import call


class Commands:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def _call(self, sql: str, params: tuple[Any, ...]) -> dict[str, Any]:
        return cast(dict[str, Any], await call(self.pool, sql, params))

    async def claim_attempts(self, attempt_ids: list[str]) -> list[dict[str, Any]]:
        return cast(
            list[dict[str, Any]],
            await call(self.pool, "SELECT app.claim_attempts(%s::uuid[]) AS r", (attempt_ids,)),
        )

    async def begin_calls(self, attempt_ids: list[str], claim_nos: list[int]) -> list[str]:
        calling = await call(
            self.pool,
            "SELECT app.begin_calls(%s::uuid[], %s::int[]) AS r",
            (attempt_ids, claim_nos),
        )
        return [str(a) for a in calling]

    async def record_handoffs(self, handoffs: list[dict[str, str]]) -> dict[str, Any]:
        return await self._call("SELECT app.record_handoffs(%s) AS r", (Jsonb(handoffs),))

    async def apply_receipts(self, limit: int) -> dict[str, Any]:
        return await self._call("SELECT app.apply_receipts(%s) AS r", (limit,))

    async def isolate_receipts(self, limit: int) -> dict[str, Any]:
        return await self._call("SELECT app.isolate_receipts(%s) AS r", (limit,))

    async def due_lookups(self, limit: int) -> list[dict[str, Any]]:
        return cast(
            list[dict[str, Any]],
            await call(self.pool, "SELECT app.due_lookups(%s) AS r", (limit,)),
        )

    async def record_lookups(self, results: list[dict[str, Any]]) -> dict[str, Any]:
        return await self._call("SELECT app.record_lookups(%s) AS r", (Jsonb(results),))

    async def reconcile_attempt(
        self, attempt_id: str, claim_no: int, candidates: list[dict[str, str | None]] | None
    ) -> dict[str, Any]:
        """``candidates`` None: the provider cannot be asked (no lookups)."""
        return await self._call(
            "SELECT app.reconcile_attempt(%s, %s, %s) AS r",
            (attempt_id, claim_no, None if candidates is None else Jsonb(candidates)),
        )

    async def expire_steps(self, attempt_ids: list[str]) -> dict[str, Any]:
        return await self._call("SELECT app.expire_steps(%s::uuid[]) AS r", (attempt_ids,))

    async def provider_account_credentials(self, ids: list[str]) -> list[dict[str, Any]]:
        rows = await call(self.pool, CREDENTIALS_SQL, (ids,))
        return cast(list[dict[str, Any]], rows)

    async def fill_webhook_secrets(self, secrets: list[dict[str, Any]]) -> int:
        """Stores the webhook secrets of accounts sealed before they were sealed apart."""
        return int(await call(self.pool, FILL_SQL, (Jsonb(secrets),)))

    async def record_send_error(
        self,
        attempt_id: str,
        claim_no: int,
        code: str,
        message: str,
        http_status: int | None,
        retry_after: timedelta | None = None,
        sent: bool | None = None,
    ) -> dict[str, Any]:
        return await self._call(
            "SELECT app.record_send_error(%s, %s, %s, %s, %s, %s, %s) AS r",
            (attempt_id, claim_no, code, message, http_status, retry_after, sent),
        )

    async def check_settings(self, provider_timeout: timedelta) -> dict[str, Any]:
        return await self._call("SELECT app.check_worker_settings(%s) AS r", (provider_timeout,))

    async def run_maintenance(self) -> dict[str, Any]:
        return await self._call("SELECT app.run_maintenance() AS r", ())
