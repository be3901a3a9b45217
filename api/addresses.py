"""Reading the addresses of a request before it goes to SQL (see hermes/addresses.py).

A number with a country code (E.164, tel:+..., full-width +...) is read on its own; one
without is read with the tenant's default country, which the API asks SQL for
(``app.tenant_defaults``, authorized with the scope of the command to come) and keeps
for a minute per key. A request with E.164 numbers only still makes one SQL call.
"""

from __future__ import annotations

import time
from typing import Any

from api.db import Commands
from api.errors import Problem
from hermes.addresses import InvalidPhone, NeedsRegion, needs_region, normalize_address

_TTL_SECONDS = 60.0


class Regions:
    """Default country per bearer token, cached for a minute (bounded)."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._cache: dict[str, tuple[float, str]] = {}
        self._max = max_entries

    async def get(self, commands: Commands, token: str, scope: str) -> str:
        now = time.monotonic()
        hit = self._cache.get(token)
        if hit is not None and hit[0] > now:
            return hit[1]
        region = str((await commands.tenant_defaults(token, scope))["default_country"])
        if len(self._cache) >= self._max:
            self._cache.clear()
        self._cache[token] = (now + _TTL_SECONDS, region)
        return region


REGIONS = Regions()


class Reader:
    """Reads the addresses of one request: the tenant's region is fetched at most once,
    and only if some address needs it."""

    def __init__(self, commands: Commands, token: str, scope: str) -> None:
        self.commands, self.token, self.scope = commands, token, scope
        self._region: str | None = None

    async def region_for(self, values: list[Any]) -> str | None:
        if self._region is None and any(needs_region(v) for v in values):
            self._region = await REGIONS.get(self.commands, self.token, self.scope)
        return self._region

    async def address(self, raw: str, field: str) -> str:
        """E.164 (or the email as given), else a 422 problem naming ``field``."""
        try:
            return normalize_address(raw, await self.region_for([raw]))
        except (InvalidPhone, NeedsRegion) as exc:
            raise Problem(
                422,
                f"invalid_{field}",
                f'"{field}" is not a phone number Hermes can send to: {raw[:40]!r} ({exc}).',
                "Use E.164 (+14155550123) or a national number of the tenant's default country.",
            ) from None

    async def lenient(self, raw: Any) -> Any:
        """E.164 when ``raw`` reads as a number, else ``raw`` unchanged: for batches, where
        SQL refuses each unreadable item on its own."""
        if not isinstance(raw, str):
            return raw
        try:
            return normalize_address(raw, await self.region_for([raw]))
        except (InvalidPhone, NeedsRegion):
            return raw
