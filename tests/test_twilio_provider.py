"""The worker's Twilio adapter bounds every call by its timeout, whatever the SDK
passes to aiohttp: a carrier that accepts the connection and never answers gives a
ProviderError with no HTTP status (an ambiguous outcome, reconciled before any
resend), not a job that hangs forever with its whole batch."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest

from workers.providers.base import ProviderError
from workers.providers.twilio import TwilioSms


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections, reads, and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            held.append(conn)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    t.join(timeout=2)
    for c in held:
        c.close()
    srv.close()


@pytest.mark.parametrize("call", ["send", "find", "fetch"])
def test_a_silent_carrier_times_out(silent_server: str, call: str) -> None:
    async def run() -> ProviderError:
        twilio = TwilioSms("AC" + "0" * 32, "token", silent_server, timeout=0.5)
        coro: Coroutine[Any, Any, object]
        try:
            if call == "send":
                coro = twilio.send("+14155550100", "+15005550006", "hi", "http://x/cb")
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
