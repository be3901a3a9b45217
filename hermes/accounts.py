"""Tenants' provider accounts, opened: the sealed credentials (the workers) or the sealed
webhook-verification secrets (the API) fetched by id, opened with the deployment's keys
(hermes/credentials.py) and kept in memory by id (an account's secrets never change: a
new account replaces it)."""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from hermes.credentials import Sealer, webhook_part

log = logging.getLogger("hermes.accounts")

# ids -> [{"id", "provider", "key_id", "credentials" (base64 or None), "updated_at",
# "webhook_sealed"?}]
Fetch = Callable[[list[str]], Awaitable[list[dict[str, Any]]]]
# [{"id", "key_id", "webhook_secret" (base64)}] -> how many accounts were filled
Fill = Callable[[list[dict[str, Any]]], Awaitable[int]]

CREDENTIALS_SQL = (
    "SELECT coalesce(jsonb_agg(jsonb_build_object('id', a.id, 'provider', a.provider, "
    "'key_id', a.key_id, 'credentials', encode(a.credentials, 'base64'), "
    "'updated_at', a.updated_at, 'webhook_sealed', a.webhook_sealed)), '[]') AS r "
    "FROM app.provider_account_credentials(%s::uuid[]) a"
)
# The API's: webhook-verification secrets only (hermes_api cannot read credentials).
WEBHOOK_SECRETS_SQL = (
    "SELECT coalesce(jsonb_agg(jsonb_build_object('id', a.id, 'provider', a.provider, "
    "'key_id', a.key_id, 'credentials', encode(a.webhook_secret, 'base64'), "
    "'updated_at', a.updated_at)), '[]') AS r "
    "FROM app.provider_account_webhook_secrets(%s::uuid[]) a"
)
FILL_SQL = "SELECT app.fill_webhook_secrets(%s) AS r"


class OpenedAccount:
    def __init__(self, account_id: str, provider: str, credentials: dict[str, Any]) -> None:
        self.id = account_id
        self.provider = provider
        self.credentials = credentials

    def __repr__(self) -> str:  # never the credentials
        return f"OpenedAccount({self.id}, {self.provider})"


def sealed_webhook_secret(
    sealer: Sealer, account_id: str, provider: str, credentials: dict[str, Any]
) -> dict[str, str]:
    """An account's webhook secret sealed apart, as app.fill_webhook_secrets takes it."""
    key_id, blob = sealer.seal(
        account_id, provider, webhook_part(provider, credentials), purpose="webhook"
    )
    return {"id": account_id, "key_id": key_id, "webhook_secret": base64.b64encode(blob).decode()}


class Accounts:
    """Opens accounts on first use. ``purpose``: ``credentials`` (the workers) or
    ``webhook`` (the API: webhook-verification secrets only). An account stored before
    webhook secrets were sealed apart has none yet: a worker that opens its credentials
    seals it and stores it (``fill``), before it sends anything whose callbacks need it;
    the API finds no secret for it meanwhile (``None``, not remembered)."""

    def __init__(
        self,
        sealer: Sealer | None,
        fetch: Fetch,
        purpose: str = "credentials",
        fill: Fill | None = None,
    ) -> None:
        self.sealer = sealer
        self.fetch = fetch
        self.purpose = purpose
        self.fill = fill
        self._open: dict[str, OpenedAccount] = {}

    async def get_many(self, ids: Iterable[str]) -> dict[str, OpenedAccount]:
        wanted = {i for i in ids if i}
        missing = sorted(wanted - set(self._open))
        if missing:
            if self.sealer is None:
                raise LookupError(
                    "HERMES_CREDENTIALS_KEYS is not set: tenant accounts cannot be opened"
                )
            unsealed: list[dict[str, str]] = []
            for row in await self.fetch(missing):
                if row.get("credentials") is None:
                    continue  # no webhook secret sealed for it yet
                opened = self.sealer.open(
                    str(row["id"]),
                    str(row["provider"]),
                    str(row["key_id"]),
                    base64.b64decode(str(row["credentials"])),
                    purpose=self.purpose,
                )
                self._open[str(row["id"])] = OpenedAccount(
                    str(row["id"]), str(row["provider"]), opened
                )
                if self.purpose == "credentials" and row.get("webhook_sealed") is False:
                    unsealed.append(
                        sealed_webhook_secret(
                            self.sealer, str(row["id"]), str(row["provider"]), opened
                        )
                    )
            if unsealed and self.fill is not None:
                try:
                    await self.fill(unsealed)
                except Exception as exc:  # sending does not depend on it: retried next start
                    log.error("webhook secrets could not be stored: %s", type(exc).__name__)
        return {i: self._open[i] for i in wanted if i in self._open}

    async def get(self, account_id: str) -> OpenedAccount | None:
        return (await self.get_many([account_id])).get(account_id)
