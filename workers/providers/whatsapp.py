"""WhatsApp through Meta's WhatsApp Business Cloud API (the Graph API).

Meta publishes no Python SDK for the Cloud API; this is the documented HTTP call,
``POST {WHATSAPP_API_BASE_URL}/{version}/{phone-number-id}/messages`` with a system
user's access token, on one keep-alive aiohttp session. The base URL is configuration
(the local simulator), never a patch.

The sender is a business phone number; the Cloud API addresses it by its phone-number id
(``WHATSAPP_PHONE_NUMBERS``: ``+14155550170=100000000000001,...``). The attempt id travels
as ``biz_opaque_callback_data``, which Meta echoes in every status webhook (``POST
/v1/webhooks/whatsapp``), so a status finds its attempt even when the worker died before
it recorded the message id (``wamid``). The answer ``accepted`` is the hand-off; ``sent``,
``delivered``, ``read`` or ``failed`` follow as webhooks. Errors carry the Graph API's
code (131026 undeliverable, 131047 outside the 24-hour window, 130429 rate limit ...),
which SQL decides on (private.provider_error_is_permanent). No lookups: the Cloud API
cannot be asked about a message.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import aiohttp

from workers.providers.base import Handoff, NoLookups, Outgoing, ProviderError, Slots
from workers.providers.twilio import retry_after_seconds

DEFAULT_BASE_URL = "https://graph.facebook.com"
DEFAULT_VERSION = "v21.0"


def parse_phone_numbers(spec: str) -> dict[str, str]:
    """``+14155550170=100000000000001,...`` -> {business number: phone-number id}."""
    out: dict[str, str] = {}
    for item in spec.split(","):
        number, sep, pid = item.strip().partition("=")
        if not item.strip():
            continue
        if not sep or not number.startswith("+") or not pid.strip().isdigit():
            raise ValueError(f"WHATSAPP_PHONE_NUMBERS: {item!r} is not +E164=phone-number-id")
        out[number.strip()] = pid.strip()
    return out


def graph_error(status: int, body: bytes) -> tuple[str, str]:
    """(the Graph API error's code, its message) from an error answer."""
    try:
        error = json.loads(body).get("error") or {}
    except (ValueError, AttributeError):
        return f"http_{status}", "the Cloud API answered an error that is not JSON"
    if not isinstance(error, dict) or error.get("code") is None:
        return f"http_{status}", "the Cloud API answered an error"
    details = (error.get("error_data") or {}).get("details") if isinstance(error, dict) else None
    message = str(details or error.get("message") or "refused")[:300]
    return str(error["code"]), message


class WhatsAppCloud(NoLookups):
    name = "whatsapp"

    def __init__(
        self,
        access_token: str,
        phone_numbers: dict[str, str],
        base_url: str | None,
        version: str | None,
        timeout: float,
        connections: int = 64,
    ) -> None:
        self._auth = f"Bearer {access_token}"
        self.phone_numbers = phone_numbers
        self.base = (base_url or DEFAULT_BASE_URL).rstrip("/") + "/" + (version or DEFAULT_VERSION)
        self.timeout = timeout
        self.connections = connections
        self._slots = Slots("the Cloud API", connections, timeout / 2)
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.connections),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(self, out: Outgoing) -> Handoff:
        phone_number_id = self.phone_numbers.get(out.from_ or "")
        if phone_number_id is None:
            # Nothing was sent: the deployment has no Cloud API number for this sender.
            raise ProviderError(
                "sender_not_configured",
                f"no WhatsApp phone-number id for the sender {out.from_}",
                None,
                sent=False,
            )
        request: dict[str, object] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": out.to.lstrip("+"),
            "biz_opaque_callback_data": out.attempt_id,
        }
        template = out.content.get("template")
        if isinstance(template, dict):
            # An approved template (validated in SQL): its body's {{n}} from the parameters.
            params = [{"type": "text", "text": str(p)} for p in template.get("parameters") or []]
            request["type"] = "template"
            request["template"] = {
                "name": template["name"],
                "language": {"code": template["language"]},
                "components": [{"type": "body", "parameters": params}] if params else [],
            }
        else:
            request["type"] = "text"
            request["text"] = {"body": out.body, "preview_url": False}
        # A free connection first (base.Slots: none in time is sent=False); the
        # session's timeout then bounds the call alone.
        async with self._slots.slot():
            try:
                async with self._http().post(
                    f"{self.base}/{phone_number_id}/messages",
                    data=json.dumps(request).encode(),
                    headers={"Authorization": self._auth, "Content-Type": "application/json"},
                ) as response:
                    answer = await response.read()
                    status = response.status
                    headers = response.headers
            except (TimeoutError, aiohttp.ClientError) as exc:
                # No answer: Meta may or may not have it (never resent blindly).
                raise ProviderError(
                    type(exc).__name__, "no answer from the Cloud API", None
                ) from exc
        if status != 200:
            code, message = graph_error(status, answer)
            raise ProviderError(
                code, message, status, retry_after_seconds(headers, datetime.now(UTC))
            )
        try:
            wamid = str(json.loads(answer)["messages"][0]["id"])
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            # It answered 200: it has the message; its statuses carry the attempt id.
            raise ProviderError(
                "bad_answer", "the Cloud API answered 200 without an id", None
            ) from exc
        return Handoff(provider_message_id=wamid, provider_status="accepted")
