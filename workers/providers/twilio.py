"""Twilio Messages API through the official SDK, asynchronously.

The SDK's aiohttp client (``AsyncTwilioHttpClient``) with one keep-alive session per
worker, bounded to the worker's provider concurrency: no thread per call, no new
connection per message. The SDK is pointed at another base URL (a local simulator)
by configuration, never patched: ``TWILIO_API_BASE_URL``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from workers.providers.base import (
    Candidate,
    Handoff,
    Outgoing,
    ProviderError,
    ProviderStatus,
    Slots,
)

# The headers of the last answer the SDK's HTTP client got in this task: a
# TwilioRestException carries the status and body but not the headers, and the client's
# own last_response is shared by every concurrent call. Each send runs in a task of its
# own (the batch's gather), so a context variable holds exactly that call's answer.
_last_headers: ContextVar[Mapping[str, str] | None] = ContextVar(
    "twilio_last_headers", default=None
)


class _HeadersKeepingClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    async def request(self, *args: Any, **kwargs: Any) -> Response:
        _last_headers.set(None)
        response: Response = await super().request(*args, **kwargs)
        _last_headers.set(response.headers)
        return response


def retry_after_seconds(
    headers: Mapping[str, str] | None, now: datetime | None = None
) -> float | None:
    """Retry-After in seconds (delta-seconds or an HTTP-date), None when absent or
    unreadable. What to do with it is SQL's (app.record_send_error)."""
    value = (headers or {}).get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class TwilioSms:
    name = "twilio"
    lookups = True

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        base_url: str | None,
        timeout: float,
        connections: int = 64,
    ) -> None:
        # Built inside the running loop (aiohttp sessions belong to one loop).
        http = _HeadersKeepingClient(pool_connections=False)
        http.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=timeout),
            connector=aiohttp.TCPConnector(limit=connections, keepalive_timeout=30),
        )
        self._http = http
        # The SDK passes timeout=None to every aiohttp request, which overrides the
        # session's: every call is bounded here instead.
        self.timeout = timeout
        # A free connection is taken before the timeout starts (base.Slots): a call
        # that only waited for one never reached Twilio (sent=False).
        self._slots = Slots("Twilio", connections, timeout / 2)
        self.client = Client(account_sid, auth_token, http_client=http)
        if base_url:
            self.client.api.base_url = base_url.rstrip("/")

    async def close(self) -> None:
        await self._http.close()

    async def send(self, out: Outgoing) -> Handoff:
        try:
            async with self._slots.slot(), asyncio.timeout(self.timeout):
                msg = await self.client.messages.create_async(
                    to=out.to, from_=out.from_, body=out.body, status_callback=out.callback_url
                )
        except TwilioRestException as exc:
            code = str(exc.code) if exc.code else f"http_{exc.status}"
            raise ProviderError(
                code, _reason(exc), int(exc.status), retry_after_seconds(_last_headers.get())
            ) from exc
        except (TimeoutError, aiohttp.ClientError, TwilioException) as exc:
            # Timeout or connection loss: Twilio may or may not have created it. The
            # exception text names the account's URL: keep only its kind.
            raise ProviderError(type(exc).__name__, "no answer from Twilio", None) from exc
        return Handoff(provider_message_id=str(msg.sid), provider_status=str(msg.status))

    async def find(self, to: str, from_: str) -> list[Candidate]:
        """Twilio's most recent messages from ``from_`` to ``to`` (newest first).

        No date filter: Twilio leaves DateSent empty until a message is sent, so a
        message still queued there would be missed. Which one is ours is decided by
        app.reconcile_attempt.
        """
        try:
            async with self._slots.slot(), asyncio.timeout(self.timeout):
                found = await self.client.messages.list_async(to=to, from_=from_, limit=50)
        except TwilioRestException as exc:
            raise ProviderError("lookup_failed", _reason(exc), int(exc.status)) from exc
        except (TimeoutError, aiohttp.ClientError, TwilioException) as exc:
            raise ProviderError("lookup_failed", type(exc).__name__, None) from exc
        return [
            Candidate(
                sid=str(m.sid),
                status=str(m.status),
                body=m.body,
                date_created=m.date_created.isoformat() if m.date_created else None,
            )
            for m in found
        ]

    async def fetch(self, provider_message_id: str) -> ProviderStatus | None:
        """The current status of one message (lost receipts): ``messages(sid).fetch()``.
        None when Twilio does not know the id."""
        try:
            async with self._slots.slot(), asyncio.timeout(self.timeout):
                m = await self.client.messages(provider_message_id).fetch_async()
        except TwilioRestException as exc:
            if exc.status == 404:
                return None
            raise ProviderError("lookup_failed", _reason(exc), int(exc.status)) from exc
        except (TimeoutError, aiohttp.ClientError, TwilioException) as exc:
            raise ProviderError("lookup_failed", type(exc).__name__, None) from exc
        return ProviderStatus(
            provider_message_id=str(m.sid),
            status=str(m.status),
            error_code=str(m.error_code) if m.error_code else None,
            error_message=str(m.error_message) if m.error_message else None,
        )

    async def delete(self, provider_message_id: str) -> bool:
        """Deletes Twilio's copy of one message (erasure): ``messages(sid).delete()``.
        True when deleted, False when Twilio does not know it (already gone); a
        refusal (a message not final yet, 20009) or no answer is a ProviderError."""
        try:
            async with asyncio.timeout(self.timeout):
                return bool(await self.client.messages(provider_message_id).delete_async())
        except TwilioRestException as exc:
            if exc.status == 404:
                return False
            code = str(exc.code) if exc.code else f"http_{exc.status}"
            raise ProviderError(code, _reason(exc), int(exc.status)) from exc
        except (TimeoutError, aiohttp.ClientError, TwilioException) as exc:
            raise ProviderError(type(exc).__name__, "no answer from Twilio", None) from exc


def _reason(exc: TwilioRestException) -> str:
    return str(exc.msg).removeprefix("Unable to create record: ")[:300]
