"""Which adapter sends a claimed step: the tenant's own account, the deployment's, or --
for a sandbox tenant -- always the simulators.

* A claim names the step's ``provider``, its ``provider_account_id`` (the tenant's own
  account, chosen at intake; NULL: the deployment's) and the tenant's ``environment``.
* ``sandbox``: the sandbox set (settings ``HERMES_SANDBOX_PROVIDERS=live`` -- the
  deployment's own providers are the simulators -- or the ``SANDBOX_``-prefixed provider
  settings). Never the tenant's accounts, never a live provider unless the deployment
  says its live providers are simulators.
* with an account: an adapter built from the account's opened credentials and the
  deployment's endpoints (the same SDKs; one adapter per account, kept while the worker
  runs). Credentials are opened in memory only (hermes/credentials.py).
* otherwise the deployment's adapter for the provider.

No adapter: ``None`` -- the send entrypoint records provider_not_configured, nothing is
sent (never through another account than the one SQL chose).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from hermes.accounts import Accounts, OpenedAccount
from hermes.credentials import fcm_token_uris
from workers.providers.base import Provider
from workers.providers.fcm import FcmPush
from workers.providers.ses import SesEmail
from workers.providers.twilio import TwilioSms
from workers.providers.vonage import VonageSms
from workers.providers.whatsapp import WhatsAppCloud
from workers.settings import Settings

log = logging.getLogger("hermes.worker.providers")


def build_adapter(
    provider: str,
    c: Mapping[str, Any],
    settings: Settings,
    connections: int,
    *,
    tenant: bool = False,
) -> Provider:
    """One provider's adapter from its credentials (the deployment's settings, or a
    tenant's opened account: ``tenant``, whose credentials choose no endpoint) and the
    deployment's endpoints."""
    timeout = settings.provider_timeout_seconds
    match provider:
        case "twilio":
            return TwilioSms(
                str(c["account_sid"]),
                str(c["auth_token"]),
                settings.twilio_api_base_url,
                timeout,
                connections=connections,
            )
        case "ses":
            return SesEmail(
                str(c.get("region") or settings.ses_region),
                str(c["access_key_id"]),
                str(c["secret_access_key"]),
                str(c.get("configuration_set") or settings.ses_configuration_set or "") or None,
                settings.ses_endpoint_url,
                timeout,
                connections=connections,
            )
        case "fcm":
            return FcmPush(
                c["service_account"],
                settings.fcm_base_url,
                timeout,
                connections=connections,
                token_uris=fcm_token_uris(settings.fcm_token_uri) if tenant else None,
            )
        case "whatsapp":
            return WhatsAppCloud(
                str(c["access_token"]),
                {str(k): str(v) for k, v in dict(c["phone_numbers"]).items()},
                settings.whatsapp_api_base_url,
                settings.whatsapp_api_version,
                timeout,
                connections=connections,
            )
        case "vonage":
            return VonageSms(
                str(c["api_key"]),
                str(c["api_secret"]),
                settings.vonage_rest_host,
                timeout,
                connections=connections,
            )
    raise LookupError(f"no adapter for provider {provider!r}")


def deployment_providers(settings: Settings) -> dict[str, Provider]:
    """The deployment's own adapters, from its settings (a provider without credentials
    has none)."""
    s = settings
    credentials: dict[str, dict[str, Any] | None] = {
        "twilio": {"account_sid": s.twilio_account_sid, "auth_token": s.twilio_auth_token}
        if s.twilio_account_sid and s.twilio_auth_token
        else None,
        "ses": {"access_key_id": s.ses_access_key_id, "secret_access_key": s.ses_secret_access_key}
        if s.ses_access_key_id and s.ses_secret_access_key
        else None,
        "fcm": {"service_account": s.fcm_service_account_file}
        if s.fcm_service_account_file
        else None,
        "whatsapp": {
            "access_token": s.whatsapp_access_token,
            "phone_numbers": s.whatsapp_phone_numbers,
        }
        if s.whatsapp_access_token
        else None,
        "vonage": {"api_key": s.vonage_api_key, "api_secret": s.vonage_api_secret}
        if s.vonage_api_key and s.vonage_api_secret
        else None,
    }
    # Twilio carries the bulk of the load: a connection per job in flight.
    return {
        name: build_adapter(
            name,
            c,
            settings,
            s.max_concurrent_tasks if name == "twilio" else min(s.max_concurrent_tasks, 64),
        )
        for name, c in credentials.items()
        if c is not None
    }


def account_provider(account: OpenedAccount, settings: Settings) -> Provider:
    """An adapter for a tenant's account: its credentials, the deployment's endpoints."""
    return build_adapter(
        account.provider,
        account.credentials,
        settings,
        min(settings.max_concurrent_tasks, 16),
        tenant=True,
    )


class Registry:
    def __init__(
        self,
        live: Mapping[str, Provider],
        sandbox: Mapping[str, Provider],
        accounts: Accounts,
        settings: Settings,
    ) -> None:
        self.live = dict(live)
        self.sandbox = dict(sandbox)
        self.accounts = accounts
        self.settings = settings
        self._by_account: dict[str, Provider] = {}

    async def prepare(self, claims: Iterable[Mapping[str, Any]]) -> None:
        """Opens the accounts a batch needs that no adapter exists for yet (one query)."""
        wanted = {
            str(c["provider_account_id"])
            for c in claims
            if c.get("provider_account_id") and c.get("environment") != "sandbox"
        } - set(self._by_account)
        if not wanted:
            return
        try:
            opened = await self.accounts.get_many(wanted)
        except (LookupError, ValueError) as exc:  # no key, or a blob that does not open
            log.error("tenant provider accounts cannot be opened: %s", exc)
            return
        for account_id, account in opened.items():
            try:
                self._by_account[account_id] = account_provider(account, self.settings)
            except (KeyError, ValueError, TypeError) as exc:
                log.error("provider account %s is unusable: %s", account_id, type(exc).__name__)

    def for_claim(self, claim: Mapping[str, Any]) -> Provider | None:
        provider = str(claim["provider"])
        if claim.get("environment") == "sandbox":
            return self.sandbox.get(provider)
        account_id = claim.get("provider_account_id")
        if account_id:
            return self._by_account.get(str(account_id))
        return self.live.get(provider)

    async def close(self) -> None:
        seen: set[int] = set()
        for p in [*self.live.values(), *self.sandbox.values(), *self._by_account.values()]:
            if id(p) not in seen:
                seen.add(id(p))
                await p.close()
