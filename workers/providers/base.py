"""What a provider adapter offers the send entrypoint."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol


@dataclass(frozen=True)
class Handoff:
    provider_message_id: str
    provider_status: str


@dataclass(frozen=True)
class Candidate:
    """A message the provider holds that may be ours (for reconciliation)."""

    sid: str
    status: str


class ProviderError(Exception):
    """The provider did not take the message.

    ``permanent``: it refused it for good (bad number, unsubscribed recipient...).
    Otherwise the outcome may be unknown and a retry must reconcile first.
    """

    def __init__(
        self, code: str, message: str, *, permanent: bool, retry_after: timedelta | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after


class SmsProvider(Protocol):
    name: str

    def send(self, to: str, from_: str, body: str, status_callback: str) -> Handoff: ...

    def find(self, to: str, from_: str, body: str, since: datetime) -> list[Candidate]: ...
