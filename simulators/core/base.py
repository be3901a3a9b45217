"""The simulators' shared kit: a reply, environment settings, the handler interface."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from hermes.logmask import mask_text

log = logging.getLogger("simulators")


@dataclass(slots=True)
class Reply:
    """An answer: status, body, extra headers, and detail for the log line."""

    status: int
    body: bytes
    note: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json"
    # Seconds to wait before writing it, the request being handled already (a provider
    # that accepted a message, then answers late: the caller's timeout fires first).
    delay_s: float = 0.0


class Handler(Protocol):
    """A provider's simulator as :class:`simulators.core.server.SimServer` serves it."""

    name: str
    accepted: int  # messages accepted since start (the server's GC keeper watches it)
    resets: int

    def handle(
        self,
        method: str,
        path: str,
        query: str,
        authorization: str | None,
        content_type: str | None,
        body: bytes,
    ) -> Reply: ...

    def latency_for(self, path: str) -> float: ...

    def log_request(
        self, method: str, path: str, query: str, status: int, took_s: float, note: str | None
    ) -> None: ...

    def error_reply(self, status: int, message: str) -> Reply: ...

    def log_ready(self, where: str) -> None: ...

    async def close(self) -> int: ...


class Tasks:
    """Background tasks (callbacks) a simulator keeps track of, to cancel them."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Awaitable[None], name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        task.set_name(name)
        self.tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s crashed", task.get_name(), exc_info=task.exception())

    def cancel(self) -> None:
        for task in list(self.tasks):
            task.cancel()

    async def close(self) -> int:
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        return len(tasks)


def env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    return int(raw) if raw else default


def env_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    return float(raw) if raw else default


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be 0 or 1: {raw!r}")


class SimBase:
    """What every provider simulator's Handler does alike: the request log line, the
    stats counters, and the ``/_sim/`` control endpoints (health, the ledger, stats,
    reset). A simulator supplies ``ledger()``, ``stats_extra()`` and ``forget()``."""

    name: str
    logger: logging.Logger
    accepted: int
    resets: int
    stats: dict[str, int]

    def log_request(
        self,
        method: str,
        path: str,
        query: str,  # noqa: ARG002
        status: int,
        took_s: float,
        note: str | None,
    ) -> None:
        level = logging.DEBUG if path.startswith("/_sim/") else logging.INFO
        self.logger.log(
            level,
            "API %s %s -> %d in %.1f ms%s",
            method,
            path,
            status,
            took_s * 1000,
            f" | {mask_text(note)}" if note else "",
        )

    def _count(self, what: str) -> None:
        self.stats[what] = self.stats.get(what, 0) + 1

    def ledger(self) -> list[Any]:
        raise NotImplementedError

    def stats_extra(self) -> dict[str, Any]:
        return {}

    def forget(self) -> int:
        """Clears the ledger (and pending callbacks); returns how many entries it held."""
        raise NotImplementedError

    def sim_route(self, method: str, path: str) -> Reply | None:
        """The ``/_sim/`` control endpoints, or None for any other request."""
        if method in ("GET", "HEAD"):
            if path == "/_sim/health":
                return Reply(200, b'{"ok": true}')
            if path == "/_sim/messages":
                return Reply(200, orjson.dumps(self.ledger()))
            if path == "/_sim/stats":
                return Reply(200, orjson.dumps(self.stats | self.stats_extra()))
        if method == "POST" and path == "/_sim/reset":
            n = self.forget()
            self.stats = {}
            self.resets += 1
            return Reply(200, orjson.dumps({"reset": n}))
        return None
