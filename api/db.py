"""The command API's only door to the database: one typed call per SQL function."""

from __future__ import annotations

from typing import Any, cast

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from hermes.accounts import WEBHOOK_SECRETS_SQL
from hermes.sqlcall import call, call_on

# How long one erasure may run (it scans the tenant's landed import rows).
ERASURE_STATEMENT_TIMEOUT = "10min"


class Commands:
    """Each method calls exactly one ``app.*`` function and returns its JSON result."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def _call(self, sql: str, params: tuple[Any, ...]) -> Any:
        return await call(self.pool, sql, params)

    # Every command takes the bearer token: the SQL function authenticates it, checks
    # the scope the command needs and acts for that key's tenant, in one call.

    async def create_tenant(
        self,
        token: str,
        name: str,
        environment: str,
        default_sms_from: str | None,
        default_email_from: str | None = None,
        default_whatsapp_from: str | None = None,
    ) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            await self._call(
                "SELECT app.create_tenant(%s, %s, %s, %s, %s, %s) AS r",
                (
                    token,
                    name,
                    environment,
                    default_sms_from,
                    default_email_from,
                    default_whatsapp_from,
                ),
            ),
        )

    async def create_api_key(
        self, token: str, name: str, scopes: list[str], expires_at: str | None
    ) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            await self._call(
                "SELECT app.create_api_key(%s, %s, %s, %s) AS r", (token, name, scopes, expires_at)
            ),
        )

    async def list_api_keys(self, token: str) -> list[dict[str, Any]]:
        return cast(
            list[dict[str, Any]], await self._call("SELECT app.list_api_keys(%s) AS r", (token,))
        )

    async def rotate_api_key(self, token: str, key_id: str, overlap_seconds: int) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            await self._call(
                "SELECT app.rotate_api_key(%s, %s, make_interval(secs => %s)) AS r",
                (token, key_id, overlap_seconds),
            ),
        )

    async def revoke_api_key(self, token: str, key_id: str) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            await self._call("SELECT app.revoke_api_key(%s, %s) AS r", (token, key_id)),
        )

    async def submit_message(
        self, token: str, request: dict[str, Any], idempotency_key: str | None
    ) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            await self._call(
                "SELECT app.submit_message(%s, %s, %s) AS r",
                (token, Jsonb(request), idempotency_key),
            ),
        )

    async def submit_messages(self, token: str, messages: list[Any]) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            await self._call("SELECT app.submit_messages(%s, %s) AS r", (token, Jsonb(messages))),
        )

    async def get_message(self, token: str, message_id: str) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            await self._call("SELECT app.get_message(%s, %s) AS r", (token, message_id)),
        )

    async def record_receipts(self, receipts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return cast(
            list[dict[str, Any]],
            await self._call("SELECT app.record_receipts(%s) AS r", (Jsonb(receipts),)),
        )

    async def tenant_defaults(self, token: str, scope: str) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            await self._call("SELECT app.tenant_defaults(%s, %s) AS r", (token, scope)),
        )

    async def record_consent(self, token: str, event: dict[str, Any]) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            await self._call("SELECT app.record_consent(%s, %s) AS r", (token, Jsonb(event))),
        )

    async def record_suppressions(
        self, token: str, action: str, list_name: str, entries: list[Any], reason: str | None
    ) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            await self._call(
                "SELECT app.record_suppressions(%s, %s, %s, %s, %s) AS r",
                (token, action, list_name, Jsonb(entries), reason),
            ),
        )

    async def get_tenant_policy(self, token: str) -> dict[str, Any]:
        return cast(
            dict[str, Any], await self._call("SELECT app.get_tenant_policy(%s) AS r", (token,))
        )

    async def set_tenant_policy(self, token: str, policy: dict[str, Any]) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            await self._call("SELECT app.set_tenant_policy(%s, %s) AS r", (token, Jsonb(policy))),
        )

    async def set_provider_account(
        self,
        token: str,
        account_id: str,
        provider: str,
        name: str,
        sealed: tuple[str, bytes],
        webhook_sealed: tuple[str, bytes],
    ) -> dict[str, Any]:
        """``sealed`` and ``webhook_sealed``: (key id, blob) of the credentials and of
        the webhook-verification secret, sealed apart."""
        return cast(
            dict[str, Any],
            await self._call(
                "SELECT app.set_provider_account(%s, %s, %s, %s, %s, %s, %s, %s) AS r",
                (
                    token,
                    account_id,
                    provider,
                    name,
                    sealed[1],
                    sealed[0],
                    webhook_sealed[1],
                    webhook_sealed[0],
                ),
            ),
        )

    async def disable_provider_account(self, token: str, account_id: str) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            await self._call(
                "SELECT app.disable_provider_account(%s, %s) AS r", (token, account_id)
            ),
        )

    async def provider_account_webhook_secrets(self, ids: list[str]) -> list[dict[str, Any]]:
        """The sealed webhook-verification secrets (never the credentials: hermes_api
        cannot read those)."""
        return cast(list[dict[str, Any]], await self._call(WEBHOOK_SECRETS_SQL, (ids,)))

    async def inbound_provider_account(
        self, provider: str, tenant_id: str | None, to: str
    ) -> str | None:
        r = await self._call(
            "SELECT app.inbound_provider_account(%s, %s, %s) AS r", (provider, tenant_id, to)
        )
        return None if r is None else str(r)

    async def attempt_provider_account(self, attempt_id: str) -> str | None:
        r = await self._call("SELECT app.attempt_provider_account(%s) AS r", (attempt_id,))
        return None if r is None else str(r)

    async def register_sender(self, token: str, sender: dict[str, Any]) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            await self._call("SELECT app.register_sender(%s, %s) AS r", (token, Jsonb(sender))),
        )

    async def update_sender(
        self, token: str, sender_id: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            await self._call(
                "SELECT app.update_sender(%s, %s, %s) AS r", (token, sender_id, Jsonb(changes))
            ),
        )

    async def list_senders(self, token: str, filters: dict[str, Any]) -> list[dict[str, Any]]:
        return cast(
            list[dict[str, Any]],
            await self._call("SELECT app.list_senders(%s, %s) AS r", (token, Jsonb(filters))),
        )

    async def record_inbound(
        self,
        provider: str,
        tenant_id: str | None,
        provider_message_id: str,
        from_: str,
        to: str,
        body: str,
        params: dict[str, str],
    ) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            await self._call(
                "SELECT app.record_inbound(%s, %s, %s, %s, %s, %s, %s) AS r",
                (provider, tenant_id, provider_message_id, from_, to, body, Jsonb(params)),
            ),
        )

    async def record_whatsapp_inbound(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return cast(
            list[dict[str, Any]],
            await self._call("SELECT app.record_whatsapp_inbound(%s) AS r", (Jsonb(messages),)),
        )

    async def erase_addresses(self, token: str, addresses: list[Any]) -> dict[str, Any]:
        # An erasure also redacts the tenant's landed import rows (a scan that grows with
        # its imports): it may run past hermes_api's statement_timeout, up to this.
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute(
                "SELECT set_config('statement_timeout', %s, true)", (ERASURE_STATEMENT_TIMEOUT,)
            )
            return cast(
                dict[str, Any],
                await call_on(
                    conn, "SELECT app.erase_addresses(%s, %s) AS r", (token, Jsonb(addresses))
                ),
            )

    async def submit_gathered(
        self, token: str, items: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        return cast(
            list[dict[str, Any]],
            await self._call("SELECT app.submit_gathered(%s, %s) AS r", (token, Jsonb(items))),
        )

    async def get_import(self, token: str, import_id: int) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            await self._call("SELECT app.get_import(%s, %s) AS r", (token, import_id)),
        )

    async def reparse_import(self, token: str, import_id: int, version: str) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            await self._call(
                "SELECT app.reparse_import(%s, %s, %s) AS r", (token, import_id, version)
            ),
        )
