"""The ``send_sms`` job: claim -> (reconcile) -> provider -> record, each step one SQL call.

What to do is decided in SQL (app.claim_attempt, app.reconcile_attempt,
app.record_send_error); this module only carries out the provider calls.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime

from workers.db import Commands
from workers.failpoints import failpoint
from workers.providers.base import ProviderError, SmsProvider

log = logging.getLogger("hermes.worker.sms")


async def send_sms(
    payload: bytes | None, db: Commands, provider: SmsProvider, public_url: str
) -> None:
    attempt_id = str(json.loads(payload or b"{}")["attempt_id"])
    claim = await db.claim_attempt(attempt_id)
    action = claim["action"]
    if action in ("skip", "defer"):
        log.info("attempt %s: %s (%s)", attempt_id, action, claim.get("reason"))
        return
    await failpoint("after_claim")
    claim_no = int(claim["claim_no"])

    if action == "reconcile":
        since = datetime.fromisoformat(claim["first_claimed_at"])
        try:
            found = await asyncio.to_thread(
                provider.find, claim["to"], claim["from"], claim["body"], since
            )
        except ProviderError as exc:
            result = await db.record_send_error(
                attempt_id, claim_no, exc.code, exc.message, False, exc.retry_after
            )
            log.warning("attempt %s: lookup failed (%s): %s", attempt_id, exc, result["action"])
            return
        candidates = [{"sid": c.sid, "status": c.status} for c in found]
        decision = await db.reconcile_attempt(attempt_id, claim_no, candidates)
        log.info("attempt %s: reconciled -> %s", attempt_id, decision)
        if decision["action"] != "send":
            return

    callback = f"{public_url}/v1/webhooks/{provider.name}/status/{attempt_id}"
    try:
        handoff = await asyncio.to_thread(
            provider.send, claim["to"], claim["from"], claim["body"], callback
        )
    except ProviderError as exc:
        result = await db.record_send_error(
            attempt_id, claim_no, exc.code, exc.message, exc.permanent, exc.retry_after
        )
        log.warning("attempt %s: provider error %s -> %s", attempt_id, exc, result["action"])
        return
    await failpoint("after_provider_call")
    result = await db.record_handoff(
        attempt_id, handoff.provider_message_id, handoff.provider_status
    )
    log.info("attempt %s: handed off as %s (%s)", attempt_id, handoff.provider_message_id, result)
