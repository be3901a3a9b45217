"""SMS through Vonage's SMS API with the official SDK, ``vonage``.

The SDK is synchronous (requests): calls run in a thread pool of the worker's provider
concurrency, on one client; a call takes its thread (base.Slots) before its timeout
starts, and one that gets none is not sent (``sent=False``).
Its host is configuration (``VONAGE_REST_HOST``, e.g. the
local simulator's ``127.0.0.1:8093``; the SDK always speaks https, so a simulator's CA is
trusted through ``REQUESTS_CA_BUNDLE``), never a patch. The attempt id travels as
``client-ref``, which Vonage echoes in every delivery receipt (``POST
/v1/webhooks/vonage/dlr``), so a receipt finds its attempt even when the worker died
before it recorded Vonage's message id.

Vonage answers HTTP 200 with a per-message ``status``: ``0`` is the hand-off
(``submitted``); any other is a refusal, reported with that code (1 throttled, 5
internal error and 9 quota are retried; 2, 3, 6, 7, 15, 29 are final:
private.provider_error_is_permanent). The SDK retries a request whose connection was
dropped before an answer (RemoteDisconnected) on its own -- a resend Hermes cannot turn
off; see the README. No lookups: the SMS API cannot be asked about a message.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import requests
from vonage import Auth, HttpClientOptions, Vonage
from vonage_http_client.errors import HttpRequestError
from vonage_sms import SmsMessage
from vonage_sms.errors import SmsError

from workers.providers.base import Handoff, NoLookups, Outgoing, ProviderError, Slots
from workers.providers.twilio import retry_after_seconds

_CODE = re.compile(r"error code (\d+): (.*)", re.S)


class VonageSms(NoLookups):
    name = "vonage"

    def __init__(
        self,
        api_key: str,
        api_secret: str,
        rest_host: str | None,
        timeout: float,
        connections: int = 64,
    ) -> None:
        self.timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=connections, thread_name_prefix="vonage")
        self._slots = Slots("Vonage", connections, timeout / 2)
        options = HttpClientOptions(
            timeout=max(1, round(timeout)),
            max_retries=0,
            pool_maxsize=connections,
            **({"rest_host": rest_host} if rest_host else {}),
        )
        self.client = Vonage(Auth(api_key=api_key, api_secret=api_secret), options)

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _message(self, out: Outgoing) -> SmsMessage:
        # Receipts go to the account's delivery-receipt URL (POST /v1/webhooks/vonage/dlr),
        # one for every message: the attempt id is the client-ref.
        return SmsMessage(
            to=out.to.lstrip("+"),
            from_=(out.from_ or "").lstrip("+"),
            text=out.body,
            client_ref=out.attempt_id,
            status_report_req=True,
        )

    async def send(self, out: Outgoing) -> Handoff:
        message = self._message(out)
        try:
            # The slot (a thread of the pool) is taken before the timeout starts.
            answer = await self._slots.in_thread(
                self._pool, lambda: self.client.sms.send(message), self.timeout + 1
            )
        except SmsError as exc:
            # Answered, refused: the message was not taken.
            match = _CODE.search(str(exc))
            code, text = (match.group(1), match.group(2)) if match else ("unknown", str(exc))
            raise ProviderError(code, text[:300], 200) from exc
        except HttpRequestError as exc:
            status = exc.response.status_code
            raise ProviderError(
                f"http_{status}",
                "Vonage answered an HTTP error",
                status,
                retry_after_seconds(exc.response.headers),
            ) from exc
        except (TimeoutError, requests.RequestException) as exc:
            # No answer: Vonage may or may not have it (never resent blindly).
            raise ProviderError(type(exc).__name__, "no answer from Vonage", None) from exc
        sms = answer.messages[0]
        return Handoff(provider_message_id=str(sms.message_id), provider_status="submitted")
