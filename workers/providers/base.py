"""What a provider adapter offers the send entrypoint. Adapters report what the
provider said; what it means (retry, fail, which message is ours) is decided in SQL."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


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
