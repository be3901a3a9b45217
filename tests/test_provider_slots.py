"""Waiting for a free connection is not "no answer" (issue 19).

An adapter bounds its concurrent calls (its connection pool, its thread pool). A call
that only waited for a free slot and never reached the provider must not come back as
an ambiguous outcome (``ProviderError`` with ``sent`` None: reconciled, and at a
provider that cannot be asked, ended ``unknown``): the slot is taken outside the timed
region, and a call that never got one is ``sent=False``. Run against the simulators in
this process, with one connection and a slow provider.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

from simulators.core.server import SimServer
from simulators.ses.app import DEFAULT_ACCESS_KEY_ID, SesConfig, SesSimulator
from simulators.whatsapp.app import DEFAULT_ACCESS_TOKEN, WhatsAppConfig, WhatsAppSimulator
from workers.providers.base import Outgoing, Provider, ProviderError
from workers.providers.ses import SesEmail
from workers.providers.whatsapp import WhatsAppCloud

CALLS = 6
LATENCY_MS = 300
TIMEOUT = 0.5


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _out(i: int, channel: str, to: str, from_: str) -> Outgoing:
    return Outgoing(
        attempt_id=f"0190a000-0000-7000-8000-{i:012d}",
        channel=channel,
        to=to,
        from_=from_,
        content={"body": f"slot {i}", "subject": "s"},
        callback_url="",
    )


async def _run(
    sim: Any, port: int, adapter: Callable[[str], Provider], out: Callable[[int], Outgoing]
) -> tuple[list[BaseException | object], int]:
    server = SimServer(sim)
    await server.start("127.0.0.1", port)
    provider = adapter(f"http://127.0.0.1:{port}")
    try:
        results = await asyncio.gather(
            *(provider.send(out(i)) for i in range(CALLS)), return_exceptions=True
        )
        await asyncio.sleep(LATENCY_MS / 1000 * 2)  # calls still in flight at the server land
        received = len(sim.ledger())
    finally:
        await provider.close()
        await server.stop()
    return list(results), received


def _check(results: list[BaseException | object], received: int) -> None:
    errors = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(e, ProviderError) for e in errors), errors
    succeeded = len(results) - len(errors)
    ambiguous = [e for e in errors if isinstance(e, ProviderError) and e.sent is not False]
    # Only a call that reached the provider may be ambiguous: the calls that waited for
    # the one connection and never got it are sent=False.
    assert len(ambiguous) <= received - succeeded, (
        f"{len(ambiguous)} ambiguous outcome(s), but the provider got only {received} "
        f"call(s) of which {succeeded} were answered: {ambiguous}"
    )
    assert succeeded >= 1
    never = [e for e in errors if isinstance(e, ProviderError) and e.sent is False]
    assert all(e.http_status is None for e in never)


def test_whatsapp_waiting_for_a_connection_is_not_no_answer() -> None:
    port = _port()
    sim = WhatsAppSimulator(WhatsAppConfig(latency_ms=LATENCY_MS, receipt_delay_ms=0), port)
    results, received = asyncio.run(
        _run(
            sim,
            port,
            lambda url: WhatsAppCloud(
                DEFAULT_ACCESS_TOKEN,
                {"+14155550170": "100000000000001"},
                url,
                None,
                TIMEOUT,
                connections=1,
            ),
            lambda i: _out(i, "whatsapp", "+14155550100", "+14155550170"),
        )
    )
    _check(results, received)


def test_ses_waiting_for_a_thread_is_not_no_answer() -> None:
    port = _port()
    sim = SesSimulator(SesConfig(latency_ms=LATENCY_MS, receipt_delay_ms=0), port)
    results, received = asyncio.run(
        _run(
            sim,
            port,
            lambda url: SesEmail(
                "us-east-1", DEFAULT_ACCESS_KEY_ID, "secret", None, url, TIMEOUT, connections=1
            ),
            lambda i: _out(i, "email", "person@example.com", "tests@hermes.example"),
        )
    )
    _check(results, received)
