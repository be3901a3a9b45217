"""The ``send`` jobs of every channel, in batches: claim -> (reconcile) -> provider -> record.

pgqueuer hands the worker jobs one by one (it dequeues them in batches); the
:class:`SendBatcher` gathers the jobs that arrive within a few milliseconds, up to
``max_batch``, and runs them as one batch:

1. one ``app.claim_attempts`` call (one transaction) claims them all;
2. one ``app.begin_calls`` call marks the ones about to be called (a worker that dies
   before this mark left nothing at the provider: the next claim sends them);
3. the provider calls run concurrently (bounded by the worker's connection pool);
4. one ``app.record_handoffs`` call records every hand-off of the batch.

Each job waits for its own attempt's outcome, so pgqueuer's crash recovery still acts
per job. The provider of each attempt is the one its row names (``provider`` in the
claim), looked up among the adapters this worker has; each step of a cascade is an
attempt of its own, sent by its channel's adapter. What to do is decided in SQL
(app.claim_attempts, app.reconcile_attempt, app.record_send_error, and for jobs that
fail unexpectedly the sweep of app.run_maintenance): this module only carries it out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

import psycopg

from hermes.gather import Gatherer
from hermes.logmask import mask_text
from hermes.sqlcall import rolled_back_alone, status_callback_url
from workers.db import Commands
from workers.failpoints import failpoint
from workers.providers.base import Handoff, Outgoing, Provider, ProviderError
from workers.providers.registry import Registry

log = logging.getLogger("hermes.worker.send")


def attempt_of(payload: bytes | None) -> str:
    """The job's attempt id, in the canonical form the SQL answers with."""
    return str(uuid.UUID(str(json.loads(payload or b"{}")["attempt_id"])))


class SendBatcher:
    def __init__(
        self,
        db: Commands,
        registry: Registry,
        public_url: str,
        max_batch: int = 100,
        linger_seconds: float = 0.005,
    ) -> None:
        self.db = db
        self.registry = registry
        self.public_url = public_url
        self._gather: Gatherer[str, None] = Gatherer(self._run, max_batch, linger_seconds)

    async def send(self, attempt_id: str) -> None:
        """Runs one job's attempt as part of the next batch; raises what failed it."""
        await self._gather.submit(attempt_id)

    async def _run(self, attempt_ids: list[str]) -> list[BaseException | None]:
        """One batch: one claim transaction, the provider calls at once, one hand-off
        transaction. An attempt's own failure is its outcome (its job is held, and the
        maintenance sweep replaces it, at most max_job_failures times); a batch whose
        SQL the server rolled back is run again attempt by attempt, so one poison
        attempt fails only its own job."""
        unique = list(dict.fromkeys(attempt_ids))
        try:
            decisions = await self.db.claim_attempts(unique)
        except psycopg.Error as exc:
            if len(unique) == 1 or not rolled_back_alone(exc):
                raise
            # One attempt of the batch broke its claim (nothing of it was written): each
            # attempt again on its own, so that only that one's job fails (and is counted
            # by the maintenance sweep, which ends it after max_job_failures).
            log.error(
                "claim of a batch of %d failed (SQLSTATE %s): each attempt alone",
                len(unique),
                exc.sqlstate,
            )
            alone = await asyncio.gather(*(self._run([a]) for a in unique), return_exceptions=True)
            by_id = {
                a: (r if isinstance(r, BaseException) else r[0])
                for a, r in zip(unique, alone, strict=True)
            }
            return [by_id[a] for a in attempt_ids]
        await self.registry.prepare(decisions)  # tenants' accounts: one query a batch
        await failpoint("after_claim")
        # The calling mark (one transaction a batch): from here on a crash leaves the
        # outcome open (reconciled); before it, the next claim simply sends.
        adapters = {
            str(d["attempt_id"]): self.registry.for_claim(d)
            for d in decisions
            if d["action"] in ("send", "reconcile")
        }
        sends = [
            d
            for d in decisions
            if d["action"] == "send" and adapters[str(d["attempt_id"])] is not None
        ]
        calling: set[str] = set()
        if sends:
            calling = set(
                await self.db.begin_calls(
                    [str(d["attempt_id"]) for d in sends], [int(d["claim_no"]) for d in sends]
                )
            )
        await failpoint("before_provider_call")
        handoffs: dict[str, Handoff] = {}
        results = await asyncio.gather(
            *(
                self._attempt(d, adapters.get(str(d["attempt_id"])), calling, handoffs)
                for d in decisions
            ),
            return_exceptions=True,
        )
        await failpoint("after_provider_call")
        # An id with no decision (none such) has nothing to do: done.
        outcome: dict[str, BaseException | None] = {
            str(d["attempt_id"]): r if isinstance(r, BaseException) else None
            for d, r in zip(decisions, results, strict=True)
        }
        if handoffs:
            rows = [
                {
                    "attempt_id": a,
                    "provider_message_id": h.provider_message_id,
                    "provider_status": h.provider_status,
                }
                for a, h in handoffs.items()
            ]
            try:
                result = await self.db.record_handoffs(rows)
                log.debug("batch of %d: hand-offs %s", len(attempt_ids), result)
            except psycopg.Error as exc:
                if len(rows) == 1 or not rolled_back_alone(exc):
                    raise
                # One hand-off broke the batch's record: each again on its own, so that
                # only its job fails (its attempt is reconciled, never resent blindly).
                log.error(
                    "hand-offs of %d failed (SQLSTATE %s): each alone", len(rows), exc.sqlstate
                )
                for row in rows:
                    try:
                        await self.db.record_handoffs([row])
                    except psycopg.Error as one:
                        outcome[row["attempt_id"]] = one
        return [outcome.get(a) for a in attempt_ids]

    async def _attempt(
        self,
        claim: dict[str, Any],
        provider: Provider | None,
        calling: set[str],
        handoffs: dict[str, Handoff],
    ) -> None:
        attempt_id = str(claim["attempt_id"])
        action = claim["action"]
        if action in ("skip", "defer"):
            log.info("attempt %s: %s (%s)", attempt_id, action, claim.get("reason"))
            return
        claim_no = int(claim["claim_no"])
        to = claim.get("to")
        if not isinstance(to, str) or not to:
            # SQL never claims an attempt without an address; if it ever did, this job
            # fails alone (counted by the sweep) and nothing is sent to "None".
            raise ValueError(f"attempt {attempt_id}: claimed without an address")
        out = Outgoing(
            attempt_id=attempt_id,
            channel=str(claim.get("channel") or "sms"),
            to=to,
            from_=claim.get("from"),
            content=claim.get("content") or {"body": claim.get("body") or ""},
            callback_url="",
        )
        if provider is None:
            # This worker has no adapter for the attempt's provider (or account, or the
            # sandbox): not the message's fault, so never permanent; nothing was sent;
            # SQL retries it with backoff, then fails it.
            result = await self.db.record_send_error(
                attempt_id,
                claim_no,
                "provider_not_configured",
                f"this worker has no adapter for provider {claim['provider']!r}",
                None,
                sent=False,
            )
            log.error("attempt %s: no adapter for %r -> %s", attempt_id, claim["provider"], result)
            return

        if action == "send" and attempt_id not in calling:
            # Claimed again by another worker after this claim's lease ran out (this one
            # was too slow to reach the call), or finished meanwhile: that one sends.
            log.warning(
                "attempt %s: claim %d is no longer current, not calling", attempt_id, claim_no
            )
            return
        if action == "reconcile":
            if not provider.lookups:
                # The provider cannot be asked: SQL waits for a receipt, then calls the
                # hand-off unknown -- never a blind resend.
                decision = await self.db.reconcile_attempt(attempt_id, claim_no, None)
                log.info(
                    "attempt %s: unknown hand-off at %s -> %s", attempt_id, provider.name, decision
                )
                return
            try:
                found = await provider.find(out.to, out.from_ or "")
            except ProviderError as exc:
                # A failed lookup says nothing about the message itself: never permanent.
                result = await self.db.record_send_error(
                    attempt_id, claim_no, "lookup_failed", exc.message, None
                )
                log.warning(
                    "attempt %s: lookup failed (%s): %s",
                    attempt_id,
                    mask_text(exc),
                    result["action"],
                )
                return
            decision = await self.db.reconcile_attempt(
                attempt_id, claim_no, [c.as_json() for c in found]
            )
            log.info("attempt %s: reconciled -> %s", attempt_id, decision)
            if decision["action"] != "send":
                return

        out = replace(
            out, callback_url=status_callback_url(self.public_url, provider.name, attempt_id)
        )
        try:
            handoff = await provider.send(out)
        except ProviderError as exc:
            retry_after = None if exc.retry_after is None else timedelta(seconds=exc.retry_after)
            result = await self.db.record_send_error(
                attempt_id, claim_no, exc.code, exc.message, exc.http_status, retry_after, exc.sent
            )
            log.warning(
                "attempt %s: provider error %s -> %s", attempt_id, mask_text(exc), result["action"]
            )
            return
        handoffs[attempt_id] = handoff
