"""The simulators' HTTP/1.1 server: asyncio protocol + httptools, on uvloop when present.

Serves one :class:`simulators.core.base.Handler` (a provider's simulator) per port;
:func:`serve` runs several in one process.

Keep-alive, pipelining (answers in request order), ``Expect: 100-continue``, chunked
request bodies, HEAD. A request is handled as soon as its body is complete, in the
protocol callback itself - no task, no ASGI - unless the handler's latency delays
it; a request whose client disconnects during that delay is not handled (logged with
499), as before with FastAPI, whose form parsing then failed. Connections idle for more
than ``IDLE_TIMEOUT_S`` are closed. The ledger is kept out of the cyclic garbage
collector's way (see :meth:`SimServer._keep_gc`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import logging
import signal
import ssl
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from http import HTTPStatus
from typing import cast
from urllib.parse import unquote

import httptools

from simulators.core.base import Handler, Reply

log = logging.getLogger("simulators")

IDLE_TIMEOUT_S = 75.0
FREEZE_EVERY = 1000  # accepted creates

_REASONS = {s.value: s.phrase.encode("ascii") for s in HTTPStatus}


@dataclass(slots=True)
class _Request:
    method: str
    path: str
    query: str
    authorization: str | None
    content_type: str | None
    body: bytes
    keep_alive: bool
    http_10: bool


def _decode_path(raw: bytes) -> tuple[str, str]:
    """(%-decoded path, raw query) of a request target."""
    if raw[:1] != b"/":  # absolute form, or "*"
        url = httptools.parse_url(raw)
        path_b, query_b = url.path or b"/", url.query or b""
    else:
        path_b, _, query_b = raw.partition(b"?")
        path_b = path_b.partition(b"#")[0]
    path = path_b.decode("latin-1")
    if "%" in path:
        path = unquote(path)
    return path, query_b.decode("latin-1")


class _HttpConnection(asyncio.Protocol):
    def __init__(self, server: SimServer) -> None:
        self.server = server
        self.sim = server.sim
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.last_active = time.monotonic()
        # the request being read
        self.url = b""
        self.authorization: str | None = None
        self.content_type: str | None = None
        self.expect_continue = False
        self.body: list[bytes] = []
        # requests read but not answered yet (only while one waits for its latency)
        self.backlog: collections.deque[_Request] | None = None
        self.worker: asyncio.Task[None] | None = None
        # a handled request whose answer waits (Reply.delay_s), written by the worker
        self.delayed: tuple[_Request, Reply, float] | None = None
        self.closing = False

    # ------------------------------------------------------------------ protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002
        self.server.connections.discard(self)
        self.closing = True
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.last_active = time.monotonic()
        if self.closing:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # The request was read (and answered, or waits in the backlog); its upgrade
            # is declined, and the connection ends with that answer.
            if self.backlog:
                self.backlog[-1].keep_alive = False
            else:
                self._close()
        except httptools.HttpParserError:
            self._write_reply(
                self.sim.error_reply(400, "Invalid HTTP request"), False, False, "GET"
            )
            self._close()

    def on_message_begin(self) -> None:
        self.url = b""
        self.authorization = None
        self.content_type = None
        self.expect_continue = False
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"authorization":
            self.authorization = value.decode("latin-1")
        elif name == b"content-type":
            self.content_type = value.decode("latin-1")
        elif name == b"expect":
            self.expect_continue = value.lower() == b"100-continue"

    def on_headers_complete(self) -> None:
        if self.expect_continue and self.transport is not None and self.backlog is None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.closing:  # pipelined after a "Connection: close" request
            return
        parser = self.parser
        path, query = _decode_path(self.url)
        request = _Request(
            parser.get_method().decode("ascii"),
            path,
            query,
            self.authorization,
            self.content_type,
            b"".join(self.body),
            parser.should_keep_alive() and not self.closing,
            parser.get_http_version() == "1.0",
        )
        self.body = []
        if self.backlog is None and not self.sim.latency_for(path):
            self._answer(request)
            return
        if self.backlog is None:
            self.backlog = collections.deque()
        self.backlog.append(request)
        if self.worker is None:
            self.worker = self.server.spawn(self._work())

    # ------------------------------------------------------------------ answering

    async def _work(self) -> None:
        """Answers the backlog in order, each after its latency."""
        backlog = self.backlog
        assert backlog is not None
        try:
            while backlog or self.delayed is not None:
                if self.delayed is not None:
                    # An answer that waits after the request was handled (a provider
                    # that accepted the message, then was slow to say so).
                    request, reply, took = self.delayed
                    self.delayed = None
                    await asyncio.sleep(reply.delay_s)
                    self._finish(request, reply, took)
                    continue
                latency = self.sim.latency_for(backlog[0].path)
                if latency:
                    await asyncio.sleep(latency)
                request = backlog.popleft()
                if self.closing:
                    # The client left while its request waited (or the connection
                    # closed after an earlier answer): nothing is handled, as with an
                    # ASGI app reading the body after the delay.
                    self.sim.log_request(
                        request.method,
                        request.path,
                        request.query,
                        499,
                        0.0,
                        "client disconnected during the latency, not handled",
                    )
                    continue
                self._answer(request)
        finally:
            self.backlog = None
            self.worker = None

    def _answer(self, request: _Request) -> None:
        started = time.perf_counter()
        try:
            reply = self.sim.handle(
                request.method,
                request.path,
                request.query,
                request.authorization,
                request.content_type,
                request.body,
            )
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            reply = self.sim.error_reply(500, "An internal server error has occurred")
        took = time.perf_counter() - started
        if reply.delay_s > 0:
            # Written by the worker after the delay; later requests queue behind it.
            self.delayed = (request, reply, took)
            if self.backlog is None:
                self.backlog = collections.deque()
            if self.worker is None:
                self.worker = self.server.spawn(self._work())
            return
        self._finish(request, reply, took)

    def _finish(self, request: _Request, reply: Reply, took: float) -> None:
        self._write_reply(reply, request.keep_alive, request.http_10, request.method)
        if not request.keep_alive:
            self._close()
        self.sim.log_request(
            request.method, request.path, request.query, reply.status, took, reply.note
        )

    def _write_reply(self, reply: Reply, keep_alive: bool, http_10: bool, method: str) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        body = reply.body
        head = b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n" % (
            reply.status,
            _REASONS.get(reply.status, b"Unknown"),
            reply.content_type.encode("latin-1"),
            len(body),
        )
        for name, value in reply.headers:
            head += f"{name}: {value}\r\n".encode("latin-1")
        if not keep_alive:
            head += b"Connection: close\r\n"
        elif http_10:
            head += b"Connection: keep-alive\r\n"
        transport.write(head + b"\r\n" if method == "HEAD" else head + b"\r\n" + body)

    def _close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def idle_for(self, now: float) -> float:
        return 0.0 if self.worker is not None else now - self.last_active


class SimServer:
    """Serves one simulator (a :class:`Handler`) on ``host``:``port``."""

    def __init__(self, sim: Handler) -> None:
        self.sim = sim
        self.connections: set[_HttpConnection] = set()
        self.workers: set[asyncio.Task[None]] = set()
        self._server: asyncio.AbstractServer | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._gc_keeper: asyncio.Task[None] | None = None

    def spawn(self, coro: Coroutine[None, None, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self.workers.add(task)
        task.add_done_callback(self.workers.discard)
        return task

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        # A simulator whose provider's SDK insists on https (Vonage's) offers a context.
        tls: ssl.SSLContext | None = getattr(self.sim, "ssl_context", None)
        self._server = await loop.create_server(
            lambda: _HttpConnection(self), host, port, reuse_address=True, backlog=1024, ssl=tls
        )
        self._sweeper = loop.create_task(self._sweep())
        self._gc_keeper = loop.create_task(self._keep_gc())
        self.sim.log_ready(f"{'https' if tls else 'http'}://{host}:{port}")

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(IDLE_TIMEOUT_S / 5)
            now = time.monotonic()
            for conn in list(self.connections):
                if conn.idle_for(now) > IDLE_TIMEOUT_S:
                    conn._close()

    async def _keep_gc(self) -> None:
        """Keeps the ledger out of the cyclic garbage collector's way: its full
        collections walk every tracked object, which at a few hundred thousand messages
        means pauses of half a second, and more CPU than the requests themselves. Once a
        second, if a thousand messages were accepted since, the young generations are
        collected and everything left is frozen (``gc.freeze``: ignored by collections,
        still freed by reference counting). A reset unfreezes it all."""
        frozen_at, resets = 0, self.sim.resets
        while True:
            await asyncio.sleep(1.0)
            accepted = self.sim.accepted
            if self.sim.resets != resets:
                gc.unfreeze()
                frozen_at, resets = accepted, self.sim.resets
            elif accepted - frozen_at >= FREEZE_EVERY:
                gc.collect(1)
                gc.freeze()
                frozen_at = accepted

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in (self._sweeper, self._gc_keeper):
            if task is not None:
                task.cancel()
        for task in list(self.workers):
            task.cancel()
        for conn in list(self.connections):
            conn._close()
        cancelled = await self.sim.close()
        log.info(
            "%s simulator stopped (%d pending callback task(s) cancelled)", self.sim.name, cancelled
        )


async def serve(sims: list[tuple[Callable[[], Handler], int]], host: str) -> None:
    """Builds each simulator (in the loop: their clients belong to it) and serves it on
    its port until SIGINT or SIGTERM."""
    servers = [SimServer(make()) for make, _ in sims]
    for server, (_, port) in zip(servers, sims, strict=True):
        await server.start(host, port)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for server in servers:
            await server.stop()


def run(sims: list[tuple[Callable[[], Handler], int]], host: str) -> None:
    """:func:`serve` on uvloop (plain asyncio without it)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        asyncio.run(serve(sims, host))
    else:
        uvloop.run(serve(sims, host))


def cli(
    module: str,
    description: str,
    default_port: int,
    make: Callable[[int], Handler],
    argv: list[str] | None = None,
) -> None:
    """``python -m <module> [--host] [--port] [--log-level]``: one simulator, built by
    ``make(port)`` (its configuration from the environment)."""
    import argparse

    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=default_port)
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    run([(lambda: make(args.port), args.port)], args.host)
