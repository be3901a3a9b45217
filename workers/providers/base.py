"""What a provider adapter offers the send entrypoint. Adapters report what the
provider said; what it means (retry, fail, which message is ours) is decided in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


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
    Retry-After in seconds (429, 503), if it had one. ``message`` holds no credentials
    or URLs.
    """

    def __init__(
        self, code: str, message: str, http_status: int | None, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status
        self.retry_after = retry_after


class SmsProvider(Protocol):
    name: str

    async def send(self, to: str, from_: str, body: str, status_callback: str) -> Handoff: ...

    async def find(self, to: str, from_: str) -> list[Candidate]: ...

    async def fetch(self, provider_message_id: str) -> ProviderStatus | None: ...

    async def close(self) -> None: ...
