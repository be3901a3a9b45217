"""Gather concurrent requests into batches: the worker's send jobs
(workers/entrypoints/sms.py) and the API's status callbacks (api/routes/webhooks.py).

``submit(item)`` waits for the item's own outcome. The first item of a batch waits
``linger`` seconds for company (or until ``max_batch`` items are pending); then
``run(items)`` handles them all at once and returns one outcome per item, in order:
a value, or an exception for that item alone. An exception from ``run`` itself fails
every item of its batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Gatherer(Generic[T, R]):
    def __init__(
        self,
        run: Callable[[list[T]], Awaitable[list[R | BaseException]]],
        max_batch: int,
        linger: float,
    ) -> None:
        self.run = run
        self.max_batch = max_batch
        self.linger = linger
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, fut))
        if len(self._pending) >= self.max_batch:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.linger, self._flush)
        return await fut

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            outcomes = await self.run([item for item, _ in batch])
        except BaseException as exc:
            for _, fut in batch:
                _settle(fut, exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, fut), outcome in zip(batch, outcomes, strict=True):
            _settle(fut, outcome)


def _settle(fut: asyncio.Future[R], outcome: R | BaseException) -> None:
    if fut.done():
        return
    if isinstance(outcome, asyncio.CancelledError):
        fut.cancel()
    elif isinstance(outcome, BaseException):
        fut.set_exception(outcome)
    else:
        fut.set_result(outcome)
