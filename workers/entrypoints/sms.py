"""The ``send_sms`` job: claim -> (reconcile) -> provider -> record, each step one SQL call.

What to do is decided in SQL (app.claim_attempt, app.reconcile_attempt,
app.record_send_error); this module only carries out the provider calls, in a thread
pool of its own (the SDK is synchronous).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TypeVar

from hermes.sqlcall import status_callback_url
from workers.db import Commands
from workers.failpoints import failpoint
from workers.providers.base import ProviderError, SmsProvider

log = logging.getLogger("hermes.worker.sms")
T = TypeVar("T")


async def send_sms(
    payload: bytes | None,
    db: Commands,
    provider: SmsProvider,
    public_url: str,
    pool: Executor,
) -> None:
    loop = asyncio.get_running_loop()

    def blocking(fn: Callable[[], T]) -> asyncio.Future[T]:
        return loop.run_in_executor(pool, fn)

    attempt_id = str(json.loads(payload or b"{}")["attempt_id"])
    claim = await db.claim_attempt(attempt_id)
    action = claim["action"]
    if action in ("skip", "defer"):
        log.info("attempt %s: %s (%s)", attempt_id, action, claim.get("reason"))
        return
    await failpoint("after_claim")
    claim_no = int(claim["claim_no"])
    to, from_, body = claim["to"], claim["from"], claim["body"]

    if action == "reconcile":
        try:
            found = await blocking(lambda: provider.find(to, from_))
        except ProviderError as exc:
            # A failed lookup says nothing about the message itself: never permanent.
            result = await db.record_send_error(
                attempt_id, claim_no, "lookup_failed", exc.message, None
            )
            log.warning("attempt %s: lookup failed (%s): %s", attempt_id, exc, result["action"])
            return
        decision = await db.reconcile_attempt(attempt_id, claim_no, [c.as_json() for c in found])
        log.info("attempt %s: reconciled -> %s", attempt_id, decision)
        if decision["action"] != "send":
            return

    callback = status_callback_url(public_url, provider.name, attempt_id)
    try:
        handoff = await blocking(lambda: provider.send(to, from_, body, callback))
    except ProviderError as exc:
        result = await db.record_send_error(
            attempt_id, claim_no, exc.code, exc.message, exc.http_status
        )
        log.warning("attempt %s: provider error %s -> %s", attempt_id, exc, result["action"])
        return
    await failpoint("after_provider_call")
    result = await db.record_handoff(
        attempt_id, handoff.provider_message_id, handoff.provider_status
    )
    log.info("attempt %s: handed off as %s (%s)", attempt_id, handoff.provider_message_id, result)
