"""Twilio Messages API through the official SDK.

The SDK is pointed at another base URL (a local simulator) by configuration, never
patched: ``TWILIO_API_BASE_URL``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from workers.providers.base import Candidate, Handoff, ProviderError


class TwilioSms:
    name = "twilio"

    def __init__(
        self, account_sid: str, auth_token: str, base_url: str | None, timeout: float
    ) -> None:
        self.client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout))
        if base_url:
            self.client.api.base_url = base_url.rstrip("/")

    def send(self, to: str, from_: str, body: str, status_callback: str) -> Handoff:
        try:
            msg = self.client.messages.create(
                to=to, from_=from_, body=body, status_callback=status_callback
            )
        except TwilioRestException as exc:
            raise _error(exc) from exc
        except (requests.RequestException, TwilioException) as exc:
            # Timeout or connection loss: Twilio may or may not have created it.
            raise ProviderError(type(exc).__name__, str(exc)[:300], permanent=False) from exc
        return Handoff(provider_message_id=str(msg.sid), provider_status=str(msg.status))

    def find(self, to: str, from_: str, body: str, since: datetime) -> list[Candidate]:
        """Messages Twilio holds with this to/from/body, sent since ``since``.

        Twilio's list filter is by date; the body and creation time narrow it down.
        """
        try:
            found = self.client.messages.list(
                to=to, from_=from_, date_sent_after=since - timedelta(days=1), limit=200
            )
        except TwilioRestException as exc:
            raise _error(exc, lookup=True) from exc
        except (requests.RequestException, TwilioException) as exc:
            raise ProviderError("lookup_failed", str(exc)[:300], permanent=False) from exc
        return [
            Candidate(sid=str(m.sid), status=str(m.status))
            for m in found
            if m.body == body
            and (m.date_created is None or m.date_created >= since - timedelta(minutes=5))
        ]


def _error(exc: TwilioRestException, lookup: bool = False) -> ProviderError:
    status = int(exc.status)
    code = str(exc.code) if exc.code else f"http_{status}"
    # 4xx other than 429 is Twilio refusing the request: it created nothing.
    permanent = 400 <= status < 500 and status != 429 and not lookup
    return ProviderError(code, str(exc.msg)[:300], permanent=permanent)
