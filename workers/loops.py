"""The worker's two background loops besides the send jobs.

* ``apply_receipts``: the receipt inbox's consumer. It calls ``app.apply_receipts``
  (one set-based transaction per batch) again at once while batches come back full,
  and otherwise every ``idle`` seconds. Several workers may run it: the SQL lets one
  apply at a time and answers the others ``busy``. A batch that fails is followed by
  ``app.isolate_receipts``: one receipt at a time, a failing one quarantined.
* ``lookup_receipts``: lost receipts. Hand-offs overdue for a final receipt
  (``app.due_lookups``) are fetched from the provider by their provider id, and the
  answers go into the same inbox (``app.record_lookups``).

Both log and go on after an error (the database restarting, a provider outage):
nothing is lost by a missed round, the next one picks it up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from hermes.logmask import mask_text
from workers.db import Commands
from workers.providers.base import ProviderError
from workers.providers.registry import Registry

log = logging.getLogger("hermes.worker.loops")


async def apply_receipts(
    db: Commands, shutdown: asyncio.Event, batch: int = 1000, idle: float = 0.02
) -> None:
    while not shutdown.is_set():
        try:
            result = await db.apply_receipts(batch)
        except Exception:
            log.exception("apply_receipts failed; applying one receipt at a time")
            result = {"applied": 0}
            try:
                # One receipt that cannot be applied must not hold up the inbox (every
                # tenant's receipts): one at a time, the failing one quarantined.
                isolated = await db.isolate_receipts(batch)
                if isolated.get("quarantined"):
                    log.error("receipts quarantined: %s", isolated["quarantined"])
            except Exception:
                log.exception("isolate_receipts failed; retrying")
            await _sleep(shutdown, 1.0)
        if int(result.get("applied", 0)) < batch:
            await _sleep(shutdown, idle)


async def lookup_receipts(
    db: Commands,
    registry: Registry,
    shutdown: asyncio.Event,
    every: float = 5.0,
    batch: int = 100,
) -> None:
    while not shutdown.is_set():
        try:
            # (only attempts of providers that can be asked: private.providers.lookups),
            # each through the account it was sent through (a tenant's own, or ours)
            listed = await db.due_lookups(batch)
            await registry.prepare(listed)
            asked = [(d, registry.for_claim(d)) for d in listed]
            due = [(d, p) for d, p in asked if p is not None and p.lookups]
            answers = await asyncio.gather(
                *(p.fetch(str(d["provider_message_id"])) for d, p in due),
                return_exceptions=True,
            )
            found = []
            for (d, _), answer in zip(due, answers, strict=True):
                if isinstance(answer, ProviderError):
                    log.warning(
                        "lookup of %s failed: %s", d["provider_message_id"], mask_text(answer)
                    )
                elif isinstance(answer, BaseException):
                    raise answer
                elif answer is not None:
                    found.append(
                        {
                            "attempt_id": d["attempt_id"],
                            "provider": d["provider"],
                            "provider_message_id": answer.provider_message_id,
                            "provider_status": answer.status,
                            "error_code": answer.error_code,
                            "error_message": answer.error_message,
                        }
                    )
            if found:
                result = await db.record_lookups(found)
                log.info("looked up %d overdue hand-off(s): %s", len(due), result)
            if len(listed) == batch:
                continue
        except Exception:
            log.exception("receipt lookups failed; retrying")
        await _sleep(shutdown, every)


async def _sleep(shutdown: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(shutdown.wait(), timeout=seconds)
