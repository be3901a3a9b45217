"""A small HTTP/1.1 client for the status callbacks: POST only, keep-alive connections
pooled per (scheme, host, port), responses parsed by httptools.

Why not httpx/aiohttp: a callback costs the simulator a few tens of microseconds of CPU
this way, against several hundred through a general-purpose client; at thousands of
callbacks a second that is the simulator's whole budget.

Semantics the simulator relies on:

- :meth:`HttpClient.post` returns the response's status code, or raises ``OSError``
  (refused, reset, DNS, TLS: ``ssl.SSLError`` is one), ``TimeoutError`` (connect, or
  no complete answer within ``timeout`` seconds of sending) or :class:`ProtocolError`
  (not HTTP). 3xx answers are returned as they are: redirects are not followed.
- A request that finds its reused keep-alive connection closed by the server before
  any byte of an answer is sent again once on a new connection (the server closed an
  idle connection just as it was reused); a new connection failing so is an error.
- At most ``max_connections`` connections per host and port; more requests wait for
  one (no timeout on that wait, as with httpx's ``pool=None``).
- Cancelling a request closes its connection unless the answer was complete.
- Not supported: proxies (``HTTP_PROXY`` & co are ignored), HTTP/2, compression.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import ssl
from dataclasses import dataclass
from typing import cast
from urllib.parse import quote, unquote, urlsplit

import httptools

# Characters left alone when quoting a callback URL's path and query for the request
# line: everything valid in them, including existing %-escapes.
_URL_SAFE = "/?&=%:@!$'()*+,;~-._[]"


class ProtocolError(Exception):
    """The peer did not answer HTTP/1.x."""


class _StaleConnection(ConnectionResetError):
    """The server closed the connection before sending any byte of an answer."""


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed callback URL: where to connect and the start of the request."""

    scheme: str
    host: str
    port: int
    head: bytes  # "POST <target> HTTP/1.1\r\nHost: ...\r\n" (+ Authorization)

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)

    @classmethod
    def parse(cls, url: str) -> Target:
        """Raises ``ValueError`` for a URL that is not absolute http(s)."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an absolute http(s) URL: {url!r}")
        port = parts.port or (443 if scheme == "https" else 80)
        target = quote(parts.path or "/", safe=_URL_SAFE)
        if parts.query:
            target += "?" + quote(parts.query, safe=_URL_SAFE)
        netloc = parts.netloc.rpartition("@")[2]
        head = f"POST {target} HTTP/1.1\r\nHost: {netloc}\r\n"
        if parts.username is not None:  # credentials in the URL: Basic auth, as httpx does
            userinfo = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            head += f"Authorization: Basic {base64.b64encode(userinfo.encode()).decode()}\r\n"
        return cls(scheme, parts.hostname, port, head.encode("ascii"))


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[int] | None = None
        self.status = 0  # of the answer being read; 0 before its headers
        self.received = False  # any byte of the current answer
        self.complete = True  # the last answer was read entirely
        self.keep_alive = True
        self.closed = False
        self.counted = True  # still counted in the pool's open connections

    # ---------------------------------------------------------------- protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(f"invalid HTTP response: {exc}"))
            self.close()

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_message_complete(self) -> None:
        status = self.status
        if 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
            self.status = 0
            return
        waiter = self.waiter
        if waiter is None:  # an answer nobody asked for
            self.close()
            return
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()
        self.waiter = None
        if not waiter.done():
            waiter.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002
        self.closed = True
        self.pool.forget(self)
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        self.waiter = None
        if self.status >= 200:  # headers read, body delimited by the close
            self.complete = True
            waiter.set_result(self.status)
        elif not self.received:
            waiter.set_exception(_StaleConnection("server closed the connection without answering"))
        else:
            waiter.set_exception(ConnectionResetError("connection closed during the answer"))

    # ------------------------------------------------------------------- client

    @property
    def reusable(self) -> bool:
        return not self.closed and self.complete and self.keep_alive

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def _timed_out(self, timeout: float) -> None:
        self._fail(TimeoutError(f"no answer within {timeout:g} s"))
        self.close()

    def close(self) -> None:
        self.keep_alive = False
        if self.transport is not None and not self.closed:
            self.transport.close()

    async def request(self, data: bytes, timeout: float) -> int:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[int] = loop.create_future()
        self.waiter = waiter
        self.status = 0
        self.received = False
        self.complete = False
        self.transport.write(data)
        timer = loop.call_later(timeout, self._timed_out, timeout)
        try:
            return await waiter
        finally:
            timer.cancel()
            if self.waiter is waiter:
                self.waiter = None
            if not self.complete:  # cancelled, timed out or broken: never reuse it
                self.close()


class _Pool:
    """Connections to one (scheme, host, port)."""

    def __init__(self, client: HttpClient, target: Target) -> None:
        self.client = client
        self.scheme, self.host, self.port = target.key
        self.idle: list[_Connection] = []
        self.open = 0  # connections open or being opened
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def acquire(self) -> tuple[_Connection, bool]:
        """A connection, and whether it served requests before."""
        while True:
            while self.idle:
                conn = self.idle.pop()
                if conn.reusable:
                    return conn, True
                self.forget(conn)
            if self.open < self.client.max_connections:
                self.open += 1
                try:
                    conn = await self._connect()
                except BaseException:
                    self.open -= 1
                    self._wake()
                    raise
                return conn, False
            waiter = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # woken, then cancelled: pass the turn on
                else:
                    self.waiters.remove(waiter)
                raise

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        context = self.client.ssl_context() if self.scheme == "https" else None
        _, conn = await asyncio.wait_for(
            loop.create_connection(
                lambda: _Connection(self),
                self.host,
                self.port,
                ssl=context,
                server_hostname=self.host if context is not None else None,
            ),
            timeout=self.client.timeout,
        )
        return conn

    def release(self, conn: _Connection) -> None:
        if conn.reusable:
            self.idle.append(conn)
            self._wake()
        else:
            conn.close()
            self.forget(conn)

    def forget(self, conn: _Connection) -> None:
        """``conn`` is closed or being closed: it no longer counts."""
        if conn.counted:
            conn.counted = False
            self.open -= 1
            if conn in self.idle:
                self.idle.remove(conn)
            self._wake()

    def _wake(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        for conn in list(self.idle):
            conn.close()
        self.idle.clear()


class HttpClient:
    """POSTs over pooled keep-alive connections. Bound to no event loop until used."""

    def __init__(self, timeout: float = 15.0, max_connections: int = 64) -> None:
        self.timeout = timeout
        self.max_connections = max_connections
        self.pools: dict[tuple[str, str, int], _Pool] = {}
        self._ssl: ssl.SSLContext | None = None

    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    async def post(self, target: Target, headers: bytes, body: bytes) -> int:
        """POSTs ``body`` with ``headers`` (complete ``Name: value\\r\\n`` lines, without
        Content-Length); returns the answer's status code."""
        pool = self.pools.get(target.key)
        if pool is None:
            pool = self.pools[target.key] = _Pool(self, target)
        data = b"%s%sContent-Length: %d\r\n\r\n%s" % (target.head, headers, len(body), body)
        while True:
            conn, reused = await pool.acquire()
            try:
                return await conn.request(data, self.timeout)
            except _StaleConnection as exc:
                if not reused:
                    raise ConnectionResetError(*exc.args) from None
            finally:
                pool.release(conn)

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()
        self.pools.clear()
