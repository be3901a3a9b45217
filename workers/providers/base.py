"""What a provider adapter offers the send entrypoint. Adapters report what the
provider said; what it means (retry, fail, which message is ours) is decided in SQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import Executor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Outgoing:
    """One step of a message, as a provider adapter sends it: what the claim answered.

    ``content`` is the step's: ``body`` always; ``subject`` and ``html`` (email),
    ``title`` and ``data`` (push). ``callback_url`` is where the provider posts this
    attempt's receipts when it takes a URL per message (Twilio); the others carry
    ``attempt_id`` in their own way (SES message tags, WhatsApp's
    biz_opaque_callback_data, Vonage's client-ref), so that a receipt finds its attempt
    even when the worker died before recording the provider's id."""

    attempt_id: str
    channel: str
    to: str
    from_: str | None
    content: Mapping[str, Any]
    callback_url: str

    @property
    def body(self) -> str:
        return str(self.content.get("body", ""))


@dataclass(frozen=True)
class Handoff:
    provider_message_id: str
    provider_status: str


@dataclass(frozen=True)
class Candidate:
    """A message the provider holds from our sender to our recipient (reconciliation)."""

    sid: str
    status: str
    body: str | None
    date_created: str | None  # ISO 8601

    def as_json(self) -> dict[str, str | None]:
        return {
            "sid": self.sid,
            "status": self.status,
            "body": self.body,
            "date_created": self.date_created,
        }


@dataclass(frozen=True)
class ProviderStatus:
    """What the provider says of one of its messages now (lost-receipt lookups)."""

    provider_message_id: str
    status: str
    error_code: str | None
    error_message: str | None


class ProviderError(Exception):
    """The provider call did not hand the message off.

    ``http_status`` is the provider's answer, None when there was none (timeout,
    connection lost: the outcome is unknown). ``retry_after`` is the answer's
    Retry-After in seconds (429, 503), if it had one. ``sent=False``: the provider was
    never called (no account or sender for it here), so it certainly does not have the
    message. ``message`` holds no credentials or URLs.
    """

    def __init__(
        self,
        code: str,
        message: str,
        http_status: int | None,
        retry_after: float | None = None,
        *,
        sent: bool | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status
        self.retry_after = retry_after
        self.sent = sent


class Provider(Protocol):
    """A provider adapter. ``lookups``: whether the provider can be asked about its
    messages -- ``find`` (its recent messages from a sender to a recipient: reconcile an
    unknown hand-off) and ``fetch`` (one message's status: a lost receipt). Without
    lookups an unknown hand-off waits for a receipt and is never resent blindly
    (app.reconcile_attempt)."""

    name: str
    lookups: bool

    async def send(self, out: Outgoing) -> Handoff: ...

    async def find(self, to: str, from_: str) -> list[Candidate]: ...

    async def fetch(self, provider_message_id: str) -> ProviderStatus | None: ...

    async def close(self) -> None: ...


class NoLookups:
    """For providers that cannot be asked (SES, FCM, WhatsApp Cloud API)."""

    lookups = False

    async def find(self, to: str, from_: str) -> list[Candidate]:
        raise NotImplementedError("this provider has no lookups")

    async def fetch(self, provider_message_id: str) -> ProviderStatus | None:
        raise NotImplementedError("this provider has no lookups")


class Slots:
    """An adapter's concurrent calls, bounded (its connections, its threads), with the
    wait for a free slot outside the call's own timeout: time spent queued is not "no
    answer". A call that gets no slot within ``wait`` seconds never reached the
    provider: ``ProviderError(sent=False)`` (app.record_send_error sends it again; it is
    never reconciled nor ended unknown). ``wait`` is half the provider timeout: queue
    and call together stay within the claim lease (app.check_worker_settings admits a
    timeout of half the lease)."""

    def __init__(self, provider: str, size: int, wait: float) -> None:
        self.provider = provider
        self.size = max(1, size)
        self.wait = wait
        self._free = asyncio.Semaphore(self.size)

    async def _acquire(self) -> None:
        try:
            async with asyncio.timeout(self.wait):
                await self._free.acquire()
        except TimeoutError:
            raise ProviderError(
                "no_free_connection",
                f"no free connection to {self.provider} within {self.wait:g} s: not sent",
                None,
                sent=False,
            ) from None

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Holds a slot for the block (an aiohttp call: cancelled with the block)."""
        await self._acquire()
        try:
            yield
        finally:
            self._free.release()

    async def in_thread(self, pool: Executor, call: Callable[[], T], timeout: float) -> T:
        """``call`` in ``pool`` under a slot, bounded by ``timeout`` once it has a slot.
        A thread cannot be cancelled: the slot is released when the call really ends,
        so a timed-out call still running never leaves the next one queued in the pool
        (where its wait would count as no answer again)."""
        await self._acquire()
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(pool, call)
        except BaseException:
            self._free.release()
            raise
        future.add_done_callback(lambda _: self._free.release())
        async with asyncio.timeout(timeout):
            return await asyncio.shield(future)
