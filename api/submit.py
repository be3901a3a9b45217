"""Single ``POST /v1/messages`` requests, gathered.

Each request is its own transaction when submitted alone: a commit (a WAL flush), a
round trip, a pgqueuer NOTIFY. Under load many arrive within a few milliseconds, so the
API gathers those of each key for ``linger`` seconds (or up to ``max_batch``) and
submits them in one call, ``app.submit_gathered`` -- one transaction for all of them --
which answers and audits each item exactly as ``app.submit_message`` would alone. A
caller still gets its own answer: its message (201, or 200 replayed), or its own
problem. An error of the whole call (the key refused, the database gone) is every
caller's of that key, never another key's; a statement error the server rolled back
(a bug that one item triggers) is retried item by item, so that the item fails alone.
A request that finds nobody to share with waits ``linger`` (2 ms) at most.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import psycopg

from api.db import Commands
from api.errors import Problem
from hermes.gather import Gatherer
from hermes.sqlcall import rolled_back_alone

log = logging.getLogger("hermes.api")

Item = tuple[str, dict[str, Any], str | None]  # token, request, idempotency key


class Submits:
    def __init__(self, commands: Commands, max_batch: int = 100, linger: float = 0.002) -> None:
        self.commands = commands
        self.linger = linger
        self._gather: Gatherer[Item, dict[str, Any]] = Gatherer(self._run, max_batch, linger)

    async def submit(
        self, token: str, request: dict[str, Any], idempotency_key: str | None
    ) -> dict[str, Any]:
        """``{"message", "replayed"}`` as ``app.submit_message`` answers; raises the
        item's :class:`Problem`, or the call's error."""
        if self.linger <= 0:
            return await self.commands.submit_message(token, request, idempotency_key)
        return await self._gather.submit((token, request, idempotency_key))

    async def _run(self, items: list[Item]) -> list[dict[str, Any] | BaseException]:
        by_token: dict[str, list[int]] = {}
        for i, (token, _, _) in enumerate(items):
            by_token.setdefault(token, []).append(i)
        outcomes: list[dict[str, Any] | BaseException] = [RuntimeError("unanswered")] * len(items)

        async def one_key(token: str, indexes: list[int]) -> None:
            try:
                results = await self.commands.submit_gathered(
                    token, [{"request": items[i][1], "key": items[i][2]} for i in indexes]
                )
            except psycopg.Error as exc:
                if len(indexes) > 1 and rolled_back_alone(exc):
                    # The server refused the whole transaction (nothing of it was
                    # written): one item may be poison. Each item again on its own, so
                    # that it fails only itself.
                    log.warning(
                        "gathered call of %d failed (SQLSTATE %s); submitting each alone",
                        len(indexes),
                        exc.sqlstate,
                    )
                    await asyncio.gather(*(one_key(token, [i]) for i in indexes))
                    return
                for i in indexes:  # the key refused, the database gone: each caller's
                    outcomes[i] = exc
                return
            except Exception as exc:  # a bug here answers these callers only
                for i in indexes:
                    outcomes[i] = _internal(exc)
                return
            for i, result in zip(indexes, results, strict=True):
                outcomes[i] = _answer(result)

        await asyncio.gather(*(one_key(t, ix) for t, ix in by_token.items()))
        return outcomes


def _answer(result: dict[str, Any]) -> dict[str, Any] | BaseException:
    """One item's answer; an answer that cannot be read is that caller's 500 alone."""
    try:
        status = int(result["status"])
        if status in (200, 201):
            return {"message": result["message"], "replayed": status == 200}
        problem = result["problem"]
        return Problem(
            int(problem["status"]), problem["code"], problem["detail"], problem.get("hint")
        )
    except (KeyError, TypeError, ValueError) as exc:
        return _internal(exc)


def _internal(exc: BaseException) -> Problem:
    request_id = uuid.uuid4().hex
    log.error("request %s: gathered submit failed: %r", request_id, exc, exc_info=exc)
    return Problem(500, "internal_error", "Internal error.", request_id=request_id)
