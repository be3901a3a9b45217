"""pgqueuer's psycopg driver, with LISTEN on a connection of its own.

pgqueuer 1.6's ``PsycopgDriver`` waits for NOTIFY with ``notifies(timeout=1.0)`` on the
same connection it runs its queries on, and psycopg holds the connection lock while
it waits: after a wake-up, the dequeue query sits behind the next one-second wait.
Measured here: accept -> hand-off p50 was 1,010 ms, i.e. every job waited out that
timer. With the listener on a second connection, queries never wait for it.
"""

from __future__ import annotations

import asyncio

import psycopg
from pgqueuer.adapters.drivers.psycopg import PsycopgDriver
from pgqueuer.core import logconfig
from pgqueuer.core.tm import cancel_and_wait
from pgqueuer.ports.driver import NotifyCallback
from psycopg import sql


class SplitListenPsycopgDriver(PsycopgDriver):
    def __init__(
        self, connection: psycopg.AsyncConnection, listen_connection: psycopg.AsyncConnection
    ) -> None:
        super().__init__(connection)
        self._listen = listen_connection

    async def add_listener(self, channel: str, callback: NotifyCallback) -> None:
        if channel not in self._listeners:
            await self._listen.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            self._listeners[channel] = []
        self._listeners[channel].append(callback)
        if self._watcher is None:
            self._watcher = asyncio.create_task(self.watch_notifies(), name="notify_listener")
            self._tm.add(self._watcher)

    async def watch_notifies(self) -> None:
        while not self.shutdown.is_set():
            # The timeout only bounds how long a shutdown waits; it blocks no query.
            async for note in self._listen.notifies(timeout=0.5):
                for callback in list(self._listeners.get(note.channel, [])):
                    try:
                        callback(note.payload)
                    except Exception:
                        logconfig.logger.exception("NOTIFY callback failed for %s", note.channel)

    async def remove_listener(self, channel: str, callback: NotifyCallback) -> None:
        callbacks = self._listeners.get(channel, [])
        if callback not in callbacks:
            return
        callbacks.remove(callback)
        if callbacks:
            return
        del self._listeners[channel]
        if not self._listeners and self._watcher is not None:
            await cancel_and_wait(self._watcher)
            self._watcher = None
        await self._listen.execute(sql.SQL("UNLISTEN {}").format(sql.Identifier(channel)))
