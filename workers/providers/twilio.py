"""Twilio Messages API through the official SDK.

The SDK is pointed at another base URL (a local simulator) by configuration, never
patched: ``TWILIO_API_BASE_URL``.
"""

from __future__ import annotations

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
            code = str(exc.code) if exc.code else f"http_{exc.status}"
            raise ProviderError(code, _reason(exc), int(exc.status)) from exc
        except (requests.RequestException, TwilioException) as exc:
            # Timeout or connection loss: Twilio may or may not have created it. The
            # exception text names the account's URL: keep only its kind.
            raise ProviderError(type(exc).__name__, "no answer from Twilio", None) from exc
        return Handoff(provider_message_id=str(msg.sid), provider_status=str(msg.status))

    def find(self, to: str, from_: str) -> list[Candidate]:
        """Twilio's most recent messages from ``from_`` to ``to`` (newest first).

        No date filter: Twilio leaves DateSent empty until a message is sent, so a
        message still queued there would be missed. Which one is ours is decided by
        app.reconcile_attempt.
        """
        try:
            found = self.client.messages.list(to=to, from_=from_, limit=50)
        except TwilioRestException as exc:
            raise ProviderError("lookup_failed", _reason(exc), int(exc.status)) from exc
        except (requests.RequestException, TwilioException) as exc:
            # A failed page fetch is a plain TwilioException: no status to report.
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


def _reason(exc: TwilioRestException) -> str:
    return str(exc.msg).removeprefix("Unable to create record: ")[:300]
