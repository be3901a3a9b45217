"""The worker's Twilio adapter bounds every call by its timeout, whatever the SDK
passes to aiohttp: a carrier that accepts the connection and never answers gives a
ProviderError with no HTTP status (an ambiguous outcome, reconciled before any
resend), not a job that hangs forever with its whole batch."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from workers.providers.base import Outgoing, ProviderError
from workers.providers.twilio import TwilioSms, retry_after_seconds

_OUT = Outgoing(
    attempt_id="0190a000-0000-7000-8000-000000000001",
    channel="sms",
    to="+14155550100",
    from_="+15005550006",
    content={"body": "hi"},
    callback_url="http://x/cb",
)


@contextmanager
def tcp_server(on_connection: Callable[[socket.socket], None]) -> Iterator[str]:
    """A local TCP server on a free port handing each accepted connection to
    on_connection (in its accept thread); yields its http:// URL."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            on_connection(conn)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    finally:
        stop.set()
        t.join(timeout=2)
        srv.close()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections, reads, and never answers."""
    held: list[socket.socket] = []
    with tcp_server(held.append) as url:
        yield url
    for c in held:
        c.close()


@pytest.mark.parametrize("call", ["send", "find", "fetch"])
def test_a_silent_carrier_times_out(silent_server: str, call: str) -> None:
    async def run() -> ProviderError:
        twilio = TwilioSms("AC" + "0" * 32, "token", silent_server, timeout=0.5)
        coro: Coroutine[Any, Any, object]
        try:
            if call == "send":
                coro = twilio.send(_OUT)
            elif call == "find":
                coro = twilio.find("+14155550100", "+15005550006")
            else:
                coro = twilio.fetch("SM" + "0" * 32)
            with pytest.raises(ProviderError) as info:
                await asyncio.wait_for(coro, timeout=5)
            return info.value
        finally:
            await twilio.close()

    started = time.monotonic()
    error = asyncio.run(run())
    assert time.monotonic() - started < 3
    assert error.http_status is None


def answering(status: int, headers: dict[str, str], body: bytes) -> Callable[[socket.socket], None]:
    """Answers every request on a connection with one canned HTTP response."""
    head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"

    def answer(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            conn.sendall(head.encode() + body)

    return answer


@pytest.mark.parametrize(
    ("header", "expected"),
    [({"Retry-After": "7"}, 7.0), ({}, None), ({"Retry-After": "soon"}, None)],
)
def test_retry_after_reaches_the_provider_error(
    header: dict[str, str], expected: float | None
) -> None:
    """A 429 with Retry-After: the adapter reads the header through the SDK's HTTP
    client (the SDK's exception does not carry it) and hands it on, for SQL's
    app.record_send_error to wait at least that long."""
    body = b'{"code": 20429, "message": "Too Many Requests", "status": 429}'

    async def run(url: str) -> ProviderError:
        twilio = TwilioSms("AC" + "0" * 32, "token", url, timeout=5)
        try:
            with pytest.raises(ProviderError) as info:
                await twilio.send(_OUT)
            return info.value
        finally:
            await twilio.close()

    with tcp_server(answering(429, header, body)) as url:
        error = asyncio.run(run(url))
    assert error.http_status == 429
    assert error.code == "20429"
    assert error.retry_after == expected


def test_retry_after_as_an_http_date() -> None:
    now = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds({"Retry-After": "Tue, 01 Dec 2026 12:00:30 GMT"}, now) == 30.0
    assert retry_after_seconds({"Retry-After": "Tue, 01 Dec 2026 11:00:00 GMT"}, now) == 0.0
    assert retry_after_seconds(None, now) is None
