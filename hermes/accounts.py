"""Tenants' provider accounts, opened: the sealed credentials fetched by id, opened with
the deployment's keys (hermes/credentials.py) and kept in memory by (id, updated_at)."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from hermes.credentials import Sealer

# ids -> [{"id", "provider", "key_id", "credentials" (base64), "updated_at"}]
Fetch = Callable[[list[str]], Awaitable[list[dict[str, Any]]]]

CREDENTIALS_SQL = (
    "SELECT coalesce(jsonb_agg(jsonb_build_object('id', a.id, 'provider', a.provider, "
    "'key_id', a.key_id, 'credentials', encode(a.credentials, 'base64'), "
    "'updated_at', a.updated_at)), '[]') AS r FROM app.provider_account_credentials(%s::uuid[]) a"
)


class OpenedAccount:
    def __init__(self, account_id: str, provider: str, credentials: dict[str, Any]) -> None:
        self.id = account_id
        self.provider = provider
        self.credentials = credentials

    def __repr__(self) -> str:  # never the credentials
        return f"OpenedAccount({self.id}, {self.provider})"


class Accounts:
    """Opens accounts on first use; ``refresh`` forgets them (an account was replaced)."""

    def __init__(self, sealer: Sealer | None, fetch: Fetch) -> None:
        self.sealer = sealer
        self.fetch = fetch
        self._open: dict[str, OpenedAccount] = {}

    async def get_many(self, ids: Iterable[str]) -> dict[str, OpenedAccount]:
        wanted = {i for i in ids if i}
        missing = sorted(wanted - set(self._open))
        if missing:
            if self.sealer is None:
                raise LookupError(
                    "HERMES_CREDENTIALS_KEYS is not set: tenant accounts cannot be opened"
                )
            for row in await self.fetch(missing):
                opened = self.sealer.open(
                    str(row["id"]),
                    str(row["provider"]),
                    str(row["key_id"]),
                    base64.b64decode(str(row["credentials"])),
                )
                self._open[str(row["id"])] = OpenedAccount(
                    str(row["id"]), str(row["provider"]), opened
                )
        return {i: self._open[i] for i in wanted if i in self._open}

    async def get(self, account_id: str) -> OpenedAccount | None:
        return (await self.get_many([account_id])).get(account_id)
