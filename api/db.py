"""The command API's only door to the database: one typed call per SQL function."""

from __future__ import annotations

from typing import Any, cast

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from hermes.sqlcall import call


class Commands:
    """Each method calls exactly one ``app.*`` function and returns its JSON result."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def _call(self, sql: str, params: tuple[Any, ...]) -> Any:
        return await call(self.pool, sql, params)

    async def authenticate(self, token: str, scope: str) -> dict[str, Any]:
        return cast(
            dict[str, Any], await self._call("SELECT app.authenticate(%s, %s) AS r", (token, scope))
        )

    async def create_tenant(
        self, actor_key_id: str, name: str, environment: str, default_sms_from: str | None
    ) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            await self._call(
                "SELECT app.create_tenant(%s, %s, %s, %s) AS r",
                (actor_key_id, name, environment, default_sms_from),
            ),
        )

    async def create_api_key(
        self,
        tenant_id: str,
        actor_key_id: str,
        name: str,
        scopes: list[str],
        expires_at: str | None,
    ) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            await self._call(
                "SELECT app.create_api_key(%s, %s, %s, %s, %s) AS r",
                (tenant_id, actor_key_id, name, scopes, expires_at),
            ),
        )

    async def list_api_keys(self, tenant_id: str) -> list[dict[str, Any]]:
        return cast(
            list[dict[str, Any]],
            await self._call("SELECT app.list_api_keys(%s) AS r", (tenant_id,)),
        )

    async def rotate_api_key(
        self, tenant_id: str, actor_key_id: str, key_id: str, overlap_seconds: int
    ) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            await self._call(
                "SELECT app.rotate_api_key(%s, %s, %s, make_interval(secs => %s)) AS r",
                (tenant_id, actor_key_id, key_id, overlap_seconds),
            ),
        )

    async def revoke_api_key(
        self, tenant_id: str, actor_key_id: str, key_id: str
    ) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            await self._call(
                "SELECT app.revoke_api_key(%s, %s, %s) AS r", (tenant_id, actor_key_id, key_id)
            ),
        )

    async def submit_message(
        self,
        tenant_id: str,
        actor_key_id: str,
        request: dict[str, Any],
        idempotency_key: str | None,
    ) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            await self._call(
                "SELECT app.submit_message(%s, %s, %s, %s) AS r",
                (tenant_id, actor_key_id, Jsonb(request), idempotency_key),
            ),
        )

    async def submit_messages(
        self, tenant_id: str, actor_key_id: str, messages: list[Any]
    ) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            await self._call(
                "SELECT app.submit_messages(%s, %s, %s) AS r",
                (tenant_id, actor_key_id, Jsonb(messages)),
            ),
        )

    async def get_message(self, tenant_id: str, message_id: str) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            await self._call("SELECT app.get_message(%s, %s) AS r", (tenant_id, message_id)),
        )

    async def record_receipts(self, receipts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return cast(
            list[dict[str, Any]],
            await self._call("SELECT app.record_receipts(%s) AS r", (Jsonb(receipts),)),
        )
