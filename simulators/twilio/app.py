"""A local, Twilio-compatible SMS simulator: the Messages API and status callbacks.

The official ``twilio`` SDK talks to it unmodified once pointed at it::

    client = twilio.rest.Client(account_sid, auth_token)
    client.api.base_url = "http://127.0.0.1:8089"   # scheme://host:port, no path

(and no ``edge``/``region``, nor ``TWILIO_EDGE``/``TWILIO_REGION`` in the environment:
the SDK would rewrite the host name).

Wire formats are Twilio's: form-encoded requests, HTTP Basic auth with the account
SID and auth token, the Message resource JSON, Twilio's error JSON
(``{"code", "message", "more_info", "status"}``, which the SDK turns into
``TwilioRestException`` with ``.status`` = HTTP status and ``.code`` = Twilio code),
Twilio's list page format, and signed, form-encoded status callbacks.

Configuration (environment, see :meth:`SimConfig.from_env`)
-----------------------------------------------------------
``TWILIO_ACCOUNT_SID``          account SID the API accepts (``ACsimulator000...``)
``TWILIO_AUTH_TOKEN``           auth token: Basic auth password and callback signing key
``SIM_TWILIO_LATENCY_MS``       delay before answering each ``/2010-04-01`` call (0)
``SIM_TWILIO_RECEIPT_DELAY_MS`` delay between successive status callbacks (200)
``SIM_TWILIO_FAILURE_RATE``     probability that an otherwise fine message ends
                                ``undelivered`` with 30003, 30005, 30006 or 30007 (0.0)
``SIM_TWILIO_API_ERROR_RATE``   probability that a create which passed auth and
                                validation answers HTTP 500 (Twilio code 20500) without
                                creating anything (0.0)
``SIM_TWILIO_CALLBACK_LOSS_RATE`` probability that a status callback is "lost": never
                                POSTed (logged at DEBUG), while the stored status still
                                moves on, so a fetch shows the real status (0.0)
``SIM_TWILIO_SEED``             seed of the random generator (unset: not reproducible)
``SIM_TWILIO_LOG_REQUESTS``     ``1``: one INFO line per API call (``API ...``) and per
                                callback attempt (``CALLBACK ...``); ``0``: the same
                                lines at DEBUG, for load tests (1)

Endpoints
---------
``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``            create (201)
``GET  /2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}.json`` fetch (404: 20404)
``DELETE /2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}.json`` delete (204; the
    message leaves the ledger: a later GET is 404; 404 if unknown; 409 20009 while
    it is still queued, accepted or sending, as Twilio refuses)
``GET  /2010-04-01/Accounts/{AccountSid}/Messages.json``            list: ``To``, ``From``,
    ``DateSent``, ``DateSent>``, ``DateSent<``, ``PageSize`` (1-1000, default 50),
    ``Page``, ``PageToken``; newest first; ``next_page_uri`` carries
    ``PageToken=PA<last sid>`` (``previous_page_uri``: ``PB<first sid>``), as Twilio does.
    Dates are GMT. A date-only value (``YYYY-MM-DD``) compares by day, inclusive
    (``DateSent`` = that day, ``DateSent>`` = on or after, ``DateSent<`` = on or
    before). A datetime (what the SDK sends for ``date_sent_after=`` etc.:
    ``YYYY-MM-DDTHH:MM:SSZ``) compares to the second, inclusive, except ``DateSent``
    which always matches the whole day.
``GET  /_sim/health``   ``{"ok": true}``
``GET  /_sim/messages`` JSON list of every create the simulator accepted, in order:
    ``sid, to, from, body, status_callback, messaging_service_sid, status, error_code,
    date_created`` (ISO 8601) - the carrier's ledger. ``?since_seq=N&limit=M`` pages
    through it (either may be given alone): the entries after sequence number ``N``
    (default 0), at most ``M`` of them (default all), each with its ``seq`` as well.
    Sequence numbers grow by one per accepted create and are not reset by
    ``/_sim/reset``; page on with the last entry's ``seq`` until a page is empty.
``GET  /_sim/stats``    counters since start or the last reset: ``creates`` (answered
    201), ``api_errors`` (simulated 500s), ``refused`` (creates answered 400),
    ``fetches`` and ``lists`` (calls that passed auth), ``callbacks_sent`` (answered
    2xx/3xx), ``callbacks_failed`` (answered 4xx, or 5xx / no answer twice),
    ``callbacks_lost`` (dropped by ``SIM_TWILIO_CALLBACK_LOSS_RATE``),
    ``callbacks_pending`` (queued or in flight) and ``duplicate_callback_urls`` (how many
    ``StatusCallback`` URLs were given on more than one accepted create).
``POST /_sim/reset``    forget every message, zero the stats and cancel pending callbacks.

All Twilio endpoints need HTTP Basic auth ``AccountSid:AuthToken`` and the path SID must
be that account, else 401 with code 20003. Unknown paths answer 404 (20404), known paths
with another method 405 (20004).

Create validation (HTTP 400, nothing created)
---------------------------------------------
Missing ``To`` -> 21604; neither ``From`` nor ``MessagingServiceSid`` -> 21603; missing
``Body`` (and no ``MediaUrl``/``ContentSid``) -> 21602; body over 1600 characters ->
21617; ``StatusCallback`` not an absolute http(s) URL -> 21609; malformed
``MessagingServiceSid`` -> 21701; ``From`` that is not E.164, a short code or an
alphanumeric sender ID -> 21212; ``To`` that is not E.164 -> 21211. Bodies are read as
``application/x-www-form-urlencoded`` or ``multipart/form-data``, as the Content-Type
says (any other: no fields).

Twilio's documented test ("magic") numbers give Twilio's real errors (HTTP 400):

=================  ======  ============================================
``From`` number    code    meaning
=================  ======  ============================================
+15005550001       21212   invalid From number
+15005550007       21606   From is not an SMS-capable number of the account
+15005550008       21611   From has too many queued messages (queue full)
=================  ======  ============================================

=================  ======  ============================================
``To`` number      code    meaning
=================  ======  ============================================
+15005550001       21211   invalid To number
+15005550002       21612   Twilio cannot route to this number
+15005550003       21408   no permission to send to this region
+15005550004       21610   recipient unsubscribed (replied STOP)
+15005550009       21614   To is not a mobile / SMS-capable number
=================  ======  ============================================

Simulator-only outcome numbers (accepted with 201, then):

=================  =========================================================
``To`` number      outcome
=================  =========================================================
+15005550010       ``queued`` -> ``sent`` -> ``undelivered``, ErrorCode 30003
+15005550011       ``queued`` -> ``sent`` -> ``undelivered``, ErrorCode 30005
+15005550012       ``queued`` -> ``failed``, ErrorCode 30008 (never ``sent``:
                   Twilio's ``failed`` means it never left Twilio)
+15005550013       ``queued`` -> ``sent``, and no final status ever (a carrier
                   that never reports: cascade timeouts, lost receipts)
any other E.164    ``queued`` -> ``sent`` -> ``delivered``, unless
                   ``SIM_TWILIO_FAILURE_RATE`` picks it for ``undelivered``
=================  =========================================================

Message lifecycle and status callbacks
--------------------------------------
A create answers 201 with status ``queued`` (``accepted`` and a null ``from`` when only
a ``MessagingServiceSid`` was given: the simulator then picks sender +15005550006 at
the ``queued`` step). Every ``SIM_TWILIO_RECEIPT_DELAY_MS`` the stored message moves to
its next status; when a ``StatusCallback`` was given each status is POSTed to it,
form-encoded, with ``MessageSid, SmsSid, SmsMessageSid, AccountSid, From, To,
MessageStatus, SmsStatus, ApiVersion`` (+ ``MessagingServiceSid`` when set, + ``ErrorCode``
for ``undelivered``/``failed``), signed in ``X-Twilio-Signature`` (base64 HMAC-SHA1 of
the URL followed by every param name+value sorted by name, keyed by the auth token),
with an ``I-Twilio-Idempotency-Token`` unique per callback and kept across its retry. A
callback that cannot connect or answers 5xx is retried once after 1 s, then dropped.
The stored status moves on schedule whatever the callback URL does; a message's
callbacks are sent in order (each waits for the previous one and its retry), also with
a receipt delay of 0. ``date_sent`` is set at creation (real Twilio fills it in when
the message is sent). Callbacks go out over keep-alive connections (at most 64 per
host and port; see :mod:`simulators.core.http_client`), 15 s timeout, no redirects,
no proxy.

State lives in memory and is only touched from the event loop, in code without
``await`` between reading and writing it, so it needs no lock. The request handling
(:class:`Simulator`) is plain synchronous code behind two front ends: the lean
HTTP/1.1 server ``python -m simulators.twilio`` runs (:mod:`simulators.core.server`),
and an ASGI app (:func:`create_app`) for in-process use.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import collections
import dataclasses
import functools
import hashlib
import hmac
import itertools
import logging
import math
import os
import random
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import format_datetime
from operator import attrgetter
from typing import Any
from urllib.parse import parse_qsl, quote_plus, unquote, urlencode, urlsplit

import orjson

from hermes.logmask import mask_address, mask_text
from simulators.core.base import Reply, Tasks, env_bool, env_float, env_int
from simulators.core.http_client import HttpClient, Target

log = logging.getLogger("simulators.twilio")

API_VERSION = "2010-04-01"
API_PREFIX = f"/{API_VERSION}/"
DEFAULT_ACCOUNT_SID = "ACsimulator00000000000000000000000"
DEFAULT_AUTH_TOKEN = "simulator-auth-token"
SERVICE_SENDER = "+15005550006"
CARRIER_ERRORS = (30003, 30005, 30006, 30007)

# Twilio's descriptions of the carrier errors the simulator produces.
ERROR_MESSAGES: dict[int, str] = {
    30003: "Unreachable destination handset",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
}

# To numbers with a simulated final outcome: (final status, error code).
SIM_OUTCOMES: dict[str, tuple[str, int]] = {
    "+15005550010": ("undelivered", 30003),
    "+15005550011": ("undelivered", 30005),
    "+15005550012": ("failed", 30008),
    "+15005550013": ("sent", 0),
}

_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_SHORT_CODE = re.compile(r"[0-9]{3,8}")
_ALPHA_SENDER = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")
_SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")
_DATE_ONLY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_FORM_SAFE = re.compile(r"[A-Za-z0-9_.~-]*")  # what quote_plus leaves as it is
_MESSAGES_PATH = re.compile(rf"/{API_VERSION}/Accounts/([^/]+)/Messages\.json")
_MESSAGE_PATH = re.compile(rf"/{API_VERSION}/Accounts/([^/]+)/Messages/([^/]+)\.json")

_GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = set("\f^{}\\[~]|€")
_GSM7 = _GSM7_BASIC | _GSM7_EXTENDED

_STEPS_FAILED = ("queued", "failed")
_STEPS: dict[str, tuple[str, ...]] = {
    "delivered": ("queued", "sent", "delivered"),
    "undelivered": ("queued", "sent", "undelivered"),
    "failed": _STEPS_FAILED,
    "sent": ("queued", "sent"),  # no final status (+15005550013)
}


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class SimConfig:
    """Simulator settings; :meth:`from_env` reads the environment variables listed in
    the module docstring. ``callback_retry_delay_s`` (Twilio's 1 s) and
    ``callback_timeout_s`` (Twilio's 15 s) are only settable in code."""

    account_sid: str = DEFAULT_ACCOUNT_SID
    auth_token: str = DEFAULT_AUTH_TOKEN
    latency_ms: int = 0
    receipt_delay_ms: int = 200
    failure_rate: float = 0.0
    api_error_rate: float = 0.0
    seed: int | None = None
    callback_retry_delay_s: float = 1.0
    callback_timeout_s: float = 15.0
    callback_loss_rate: float = 0.0
    log_requests: bool = True

    def __post_init__(self) -> None:
        if not re.fullmatch(r"AC[0-9A-Za-z]{32}", self.account_sid):
            raise ValueError(f"account SID must be AC + 32 characters: {self.account_sid!r}")
        if not self.auth_token:
            raise ValueError("auth token must not be empty")
        if self.latency_ms < 0 or self.receipt_delay_ms < 0:
            raise ValueError("delays must be >= 0")
        for name in ("failure_rate", "api_error_rate", "callback_loss_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]: {rate}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SimConfig:
        e = os.environ if env is None else env
        seed = e.get("SIM_TWILIO_SEED", "").strip()
        return cls(
            account_sid=e.get("TWILIO_ACCOUNT_SID", "").strip() or DEFAULT_ACCOUNT_SID,
            auth_token=e.get("TWILIO_AUTH_TOKEN", "") or DEFAULT_AUTH_TOKEN,
            latency_ms=env_int(e, "SIM_TWILIO_LATENCY_MS", 0),
            receipt_delay_ms=env_int(e, "SIM_TWILIO_RECEIPT_DELAY_MS", 200),
            failure_rate=env_float(e, "SIM_TWILIO_FAILURE_RATE", 0.0),
            api_error_rate=env_float(e, "SIM_TWILIO_API_ERROR_RATE", 0.0),
            seed=int(seed) if seed else None,
            callback_loss_rate=env_float(e, "SIM_TWILIO_CALLBACK_LOSS_RATE", 0.0),
            log_requests=env_bool(e, "SIM_TWILIO_LOG_REQUESTS", True),
        )


# ------------------------------------------------------------------------ signature


def compute_signature(
    auth_token: str, url: str, params: Mapping[str, str] | Iterable[tuple[str, str]]
) -> str:
    """``X-Twilio-Signature`` per Twilio's documented algorithm: the full URL (with its
    query string), then each POST param's name and value concatenated, sorted by name
    (case-sensitive; repeated names by value); HMAC-SHA1 keyed by the auth token,
    base64-encoded."""
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    data = url + "".join(name + value for name, value in sorted(pairs))
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


# --------------------------------------------------------------------------- helpers


class _Clock:
    """``datetime.now(UTC)`` to the second, made once a second."""

    second = -1
    now = datetime.fromtimestamp(0, UTC)


def _now() -> datetime:
    second = int(time.time())
    if second != _Clock.second:
        _Clock.now = datetime.fromtimestamp(second, UTC)
        _Clock.second = second
    return _Clock.now


@functools.lru_cache(maxsize=1024)
def _rfc2822(dt: datetime) -> str:
    return format_datetime(dt)  # "Tue, 05 Mar 2024 10:00:00 +0000", as Twilio writes them


@functools.lru_cache(maxsize=1024)
def _iso(dt: datetime) -> str:
    return dt.isoformat()


def num_segments(body: str) -> int:
    """SMS segments: GSM-7 (160 a message, 153 a segment; extension characters count
    twice) or else UCS-2 (70 / 67 UTF-16 code units)."""
    if not body:
        return 1
    if _GSM7.issuperset(body):
        units = len(body) + sum(1 for c in body if c in _GSM7_EXTENDED)
        single, multi = 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2
        single, multi = 70, 67
    return 1 if units <= single else math.ceil(units / multi)


def twilio_error(code: int, message: str, status: int, note: str | None = None) -> Reply:
    """Twilio's (legacy) error JSON, which the SDK turns into TwilioRestException."""
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return Reply(status, orjson.dumps(body), note)


def _json(payload: Any, status: int = 200, note: str | None = None) -> Reply:
    return Reply(status, orjson.dumps(payload), note)


def _not_found(path: str) -> Reply:
    return twilio_error(20404, f"The requested resource {path} was not found", 404)


def _method_not_allowed() -> Reply:
    return twilio_error(20004, "Method not allowed", 405)


def _parse_when(raw: str) -> date | datetime:
    if _DATE_ONLY.fullmatch(raw):
        return date.fromisoformat(raw)
    dt = datetime.fromisoformat(raw)
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def parse_form(content_type: str | None, body: bytes) -> list[tuple[str, str]]:
    """The fields of a form body, as Starlette reads them: ``+`` and %-escapes (UTF-8)
    decoded; file parts of a multipart body left out; no fields for another type."""
    kind = (content_type or "").partition(";")[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        return parse_qsl(body.decode("latin-1"), keep_blank_values=True)
    if kind == "multipart/form-data":
        return _parse_multipart(content_type or "", body)
    return []


def _parse_multipart(content_type: str, body: bytes) -> list[tuple[str, str]]:
    from email.parser import BytesParser
    from email.policy import HTTP

    head = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart():
        return []
    fields: list[tuple[str, str]] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or part.get_filename() is not None:
            continue
        payload = part.get_payload(decode=True)
        raw = payload if isinstance(payload, bytes) else b""
        fields.append((name, raw.decode(part.get_content_charset() or "utf-8", "replace")))
    return fields


def _validate_create(
    to: str | None,
    from_: str | None,
    service: str | None,
    body: str | None,
    has_media: bool,
    callback: str | None,
) -> tuple[int, str] | None:
    if to is None:
        return 21604, "A 'To' phone number is required."
    if from_ is None and service is None:
        return 21603, "A 'From' phone number is required."
    if body is None and not has_media:
        return 21602, "Message body is required."
    if body is not None and len(body) > 1600:
        return 21617, "The concatenated message body exceeds the 1600 character limit."
    if callback is not None:
        parts = urlsplit(callback)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return 21609, f"The StatusCallback URL {callback} is not a valid URL."
    if service is not None and not _SERVICE_SID.fullmatch(service):
        return 21701, f"The Messaging Service Sid {service} is invalid."
    if from_ is not None:
        if from_ == "+15005550001" or not (
            _E164.fullmatch(from_) or _SHORT_CODE.fullmatch(from_) or _ALPHA_SENDER.fullmatch(from_)
        ):
            return (
                21212,
                f"The 'From' number {from_} is not a valid phone number, shortcode, "
                "or alphanumeric sender ID.",
            )
        if from_ == "+15005550007":
            return (
                21606,
                f"The From phone number {from_} is not a valid, SMS-capable inbound "
                "phone number or short code for your account.",
            )
        if from_ == "+15005550008":
            return 21611, "This 'From' number has exceeded the maximum number of queued messages."
    if to == "+15005550001" or not _E164.fullmatch(to):
        return 21211, f"The 'To' number {to} is not a valid phone number."
    if to == "+15005550002":
        return (
            21612,
            f"The 'To' phone number: {to}, is not currently reachable using the "
            f"'From' phone number: {from_ or service} via SMS.",
        )
    if to == "+15005550003":
        return (
            21408,
            "Permission to send an SMS has not been enabled for the region indicated "
            f"by the 'To' number: {to}.",
        )
    if to == "+15005550004":
        return 21610, "Attempt to send to unsubscribed recipient"
    if to == "+15005550009":
        return 21614, f"'To' number {to} is not a valid mobile number"
    return None


# ----------------------------------------------------------------------------- state


@dataclass(slots=True)
class PendingCallback:
    """One status callback: its form body and headers, kept across its retry."""

    status: str
    body: bytes
    headers: bytes


@dataclass(slots=True, eq=False)
class SimMessage:
    seq: int
    sid: str
    account_sid: str
    to: str
    from_: str | None
    body: str
    status_callback: str | None
    messaging_service_sid: str | None
    num_media: int
    date_created: datetime
    date_updated: datetime
    date_sent: datetime
    final_status: str
    final_error: int | None
    status: str = "queued"
    num_segments: int = 1
    error_code: int | None = None
    # Status callbacks: where to, those not sent yet, and the task sending them.
    target: Target | str | None = None  # str: why the URL cannot be used
    outbox: collections.deque[PendingCallback] | None = None
    sender: asyncio.Task[None] | None = None

    @property
    def uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}.json"

    def steps(self) -> tuple[str, ...]:
        return _STEPS.get(self.final_status, _STEPS_FAILED)

    def resource(self) -> dict[str, Any]:
        """The Message resource, as Twilio's API returns it."""
        uri = self.uri
        base = uri[:-5]
        error_code = self.error_code
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": _rfc2822(self.date_created),
            "date_sent": _rfc2822(self.date_sent),
            "date_updated": _rfc2822(self.date_updated),
            "direction": "outbound-api",
            "error_code": error_code,
            "error_message": ERROR_MESSAGES.get(error_code) if error_code else None,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": str(self.num_media),
            "num_segments": str(self.num_segments),
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {
                "media": f"{base}/Media.json",
                "feedback": f"{base}/Feedback.json",
            },
            "to": self.to,
            "uri": uri,
        }

    def ledger_entry(self) -> dict[str, Any]:
        return {
            "sid": self.sid,
            "to": self.to,
            "from": self.from_,
            "body": self.body,
            "status_callback": self.status_callback,
            "messaging_service_sid": self.messaging_service_sid,
            "status": self.status,
            "error_code": self.error_code,
            "date_created": _iso(self.date_created),
        }


@dataclass(slots=True)
class SimStats:
    """``GET /_sim/stats``."""

    creates: int = 0
    api_errors: int = 0
    refused: int = 0
    fetches: int = 0
    deletes: int = 0
    lists: int = 0
    callbacks_sent: int = 0
    callbacks_failed: int = 0
    callbacks_lost: int = 0
    callbacks_pending: int = 0
    duplicate_callback_urls: int = 0


def form_encode(pairs: Iterable[tuple[str, str]]) -> str:
    """``urllib.parse.urlencode(pairs)`` for str pairs, in a third of the time: names
    and values that need no escape are taken as they are."""
    safe = _FORM_SAFE.fullmatch
    return "&".join(
        (name if safe(name) else quote_plus(name))
        + "="
        + (value if safe(value) else quote_plus(value))
        for name, value in pairs
    )


def callback_params(msg: SimMessage, status: str) -> list[tuple[str, str]]:
    """Form params of a status callback, as Twilio sends them for SMS."""
    params = [
        ("MessageSid", msg.sid),
        ("SmsSid", msg.sid),
        ("SmsMessageSid", msg.sid),
        ("AccountSid", msg.account_sid),
        ("From", msg.from_ or ""),
        ("To", msg.to),
        ("MessageStatus", status),
        ("SmsStatus", status),
        ("ApiVersion", API_VERSION),
    ]
    if msg.messaging_service_sid:
        params.append(("MessagingServiceSid", msg.messaging_service_sid))
    if status in ("undelivered", "failed") and msg.error_code is not None:
        params.append(("ErrorCode", str(msg.error_code)))
    return params


_seq_of = attrgetter("seq")


class Simulator:
    """The simulator's memory and its request handling, independent of the HTTP server:
    :meth:`handle` turns a request into a :class:`Reply`; status callbacks run on the
    event loop that calls it. A :class:`simulators.core.base.Handler`."""

    name = "Twilio"

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.messages: dict[str, SimMessage] = {}
        self.ledger: list[SimMessage] = []  # in seq order
        self.by_to: dict[str, list[SimMessage]] = {}
        self.callback_urls: dict[str, int] = {}  # StatusCallback -> accepted creates
        self.stats = SimStats()
        self.accepted = 0  # creates since start (the stats count since the last reset)
        self.resets = 0
        self.rng = random.Random(config.seed)
        self.tasks = Tasks()  # the pending callbacks and inbound deliveries
        self.http = HttpClient(timeout=config.callback_timeout_s, max_connections=64)
        self._seq = itertools.count(1)
        credentials = f"{config.account_sid}:{config.auth_token}".encode()
        self._good_auth = "Basic " + base64.b64encode(credentials).decode("ascii")
        self._signer = hmac.new(config.auth_token.encode("utf-8"), digestmod=hashlib.sha1)
        self._receipt_delay_s = config.receipt_delay_ms / 1000
        self.latency_s = config.latency_ms / 1000
        self.log_level = logging.INFO if config.log_requests else logging.DEBUG
        self._routes: dict[str, tuple[str, Callable[[str], Reply]]] = {
            "/_sim/health": ("GET", self._health),
            "/_sim/messages": ("GET", self._sim_messages),
            "/_sim/stats": ("GET", self._sim_stats),
            "/_sim/reset": ("POST", self._sim_reset),
        }

    # ------------------------------------------------------------------- plumbing

    def next_seq(self) -> int:
        return next(self._seq)

    def error_reply(self, status: int, message: str) -> Reply:
        return twilio_error(20500 if status >= 500 else status, message, status)

    def log_ready(self, where: str) -> None:
        log_ready(self.config, where)

    def latency_for(self, path: str) -> float:
        """Seconds to wait before handling a request to ``path``."""
        return self.latency_s if path.startswith(API_PREFIX) else 0.0

    def spawn(self, coro: Awaitable[None], name: str) -> asyncio.Task[None]:
        return self.tasks.spawn(coro, name)

    def log_request(
        self, method: str, path: str, query: str, status: int, took_s: float, note: str | None
    ) -> None:
        """The ``API ...`` line of a request."""
        level = logging.DEBUG if path == "/_sim/health" else self.log_level
        if not log.isEnabledFor(level):
            return
        log.log(
            level,
            "API %s %s -> %d in %.1f ms%s",
            method,
            mask_text(f"{path}?{unquote(query)}") if query else path,
            status,
            took_s * 1000,
            f" | {mask_text(note)}" if note else "",
        )

    def reset(self) -> int:
        count = len(self.ledger)
        self.tasks.cancel()
        self.messages.clear()
        self.ledger.clear()
        self.by_to.clear()
        self.callback_urls.clear()
        self.stats = SimStats()
        self.resets += 1
        return count

    async def close(self) -> int:
        """Cancels pending callbacks and closes idle connections; how many tasks."""
        cancelled = await self.tasks.close()
        self.http.close()
        return cancelled

    # -------------------------------------------------------------------- routing

    def handle(
        self,
        method: str,
        path: str,
        query: str,
        authorization: str | None,
        content_type: str | None,
        body: bytes,
    ) -> Reply:
        """One request (``path`` %-decoded, ``query`` raw). HEAD is answered as GET: the
        caller leaves the body out."""
        get = method in ("GET", "HEAD")
        if path.startswith(API_PREFIX):
            match = _MESSAGES_PATH.fullmatch(path)
            if match is not None:
                if method == "POST":
                    return self.create(match[1], authorization, content_type, body)
                if get:
                    return self.list(match[1], authorization, path, query)
                return _method_not_allowed()
            match = _MESSAGE_PATH.fullmatch(path)
            if match is not None:
                if get:
                    return self.fetch(match[1], match[2], authorization, path)
                if method == "DELETE":
                    return self.delete(match[1], match[2], authorization, path)
                return _method_not_allowed()
        if path == "/_sim/inbound":
            if method != "POST":
                return _method_not_allowed()
            return self._sim_inbound(body)
        route = self._routes.get(path)
        if route is None:
            return _not_found(path)
        want, handler = route
        if method != want and not (get and want == "GET"):
            return _method_not_allowed()
        return handler(query)

    def _unauthorized(self, why: str) -> Reply:
        reply = twilio_error(20003, "Authenticate", 401, f"unauthorized: {why}")
        reply.headers = (("WWW-Authenticate", 'Basic realm="Twilio API"'),)
        return reply

    def check_auth(self, authorization: str | None, path_sid: str) -> Reply | None:
        config = self.config
        if authorization != self._good_auth or path_sid != config.account_sid:
            scheme, _, credentials = (authorization or "").partition(" ")
            if scheme.lower() != "basic":
                return self._unauthorized("no Basic credentials")
            try:
                decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return self._unauthorized("malformed Basic credentials")
            user, _, password = decoded.partition(":")
            good_user = hmac.compare_digest(user.encode(), config.account_sid.encode())
            good_password = hmac.compare_digest(password.encode(), config.auth_token.encode())
            if not (good_user and good_password):
                return self._unauthorized("wrong account SID or auth token")
            if path_sid != config.account_sid:
                return self._unauthorized(f"path account {path_sid} is not {config.account_sid}")
        return None

    # ---------------------------------------------------------------- Twilio API

    def create(
        self, account_sid: str, authorization: str | None, content_type: str | None, raw: bytes
    ) -> Reply:
        denied = self.check_auth(authorization, account_sid)
        if denied is not None:
            return denied
        config, stats = self.config, self.stats
        pairs = parse_form(content_type, raw)
        form = dict(pairs)
        to, from_ = form.get("To") or None, form.get("From") or None
        service, body = form.get("MessagingServiceSid") or None, form.get("Body") or None
        callback = form.get("StatusCallback") or None
        num_media = sum(1 for name, value in pairs if name == "MediaUrl" and value)
        has_media = bool(num_media) or bool(form.get("ContentSid"))
        problem = _validate_create(to, from_, service, body, has_media, callback)
        if problem is not None:
            stats.refused += 1
            code, message = problem
            return twilio_error(code, message, 400, f"refused {code}: {message}")
        assert to is not None
        if config.api_error_rate and self.rng.random() < config.api_error_rate:
            stats.api_errors += 1
            return twilio_error(
                20500,
                "An internal server error has occurred",
                500,
                f"simulated API error (rate {config.api_error_rate:g}), to={to}",
            )

        if to in SIM_OUTCOMES:
            final_status, final_error = SIM_OUTCOMES[to]
        elif config.failure_rate and self.rng.random() < config.failure_rate:
            final_status, final_error = "undelivered", self.rng.choice(CARRIER_ERRORS)
        else:
            final_status, final_error = "delivered", None

        now = _now()
        text = body or ""
        msg = SimMessage(
            seq=self.next_seq(),
            sid="SM" + secrets.token_hex(16),
            account_sid=config.account_sid,
            to=to,
            from_=from_,
            body=text,
            status_callback=callback,
            messaging_service_sid=service,
            num_media=num_media,
            date_created=now,
            date_updated=now,
            date_sent=now,
            final_status=final_status,
            final_error=final_error,
            status="queued" if from_ is not None else "accepted",
            num_segments=num_segments(text) if from_ is not None else 0,
        )
        self.messages[msg.sid] = msg
        self.ledger.append(msg)
        same_to = self.by_to.get(to)
        if same_to is None:
            self.by_to[to] = [msg]
        else:
            same_to.append(msg)
        stats.creates += 1
        self.accepted += 1
        if callback is not None:
            seen = self.callback_urls.get(callback, 0)
            self.callback_urls[callback] = seen + 1
            if seen == 1:
                stats.duplicate_callback_urls += 1
            try:
                msg.target = Target.parse(callback)
            except ValueError as exc:
                msg.target = f"{type(exc).__name__}: {exc}"
        self._schedule(msg, 0)
        note = None
        if log.isEnabledFor(self.log_level):
            outcome = final_status + (f" {final_error}" if final_error else "")
            note = (
                f"{msg.sid} to={to} from={from_ or service} status={msg.status} "
                f"-> {outcome} callback={callback or '-'}"
            )
        return Reply(201, orjson.dumps(msg.resource()), note)

    def fetch(
        self, account_sid: str, message_sid: str, authorization: str | None, path: str
    ) -> Reply:
        denied = self.check_auth(authorization, account_sid)
        if denied is not None:
            return denied
        self.stats.fetches += 1
        msg = self.messages.get(message_sid)
        if msg is None:
            reply = _not_found(path)
            reply.note = f"{message_sid} unknown"
            return reply
        return _json(msg.resource(), note=f"{msg.sid} status={msg.status}")

    def delete(
        self, account_sid: str, message_sid: str, authorization: str | None, path: str
    ) -> Reply:
        """Twilio's Message DELETE: the message is gone from the account (and from the
        simulator's ledger); its pending callbacks are not sent."""
        denied = self.check_auth(authorization, account_sid)
        if denied is not None:
            return denied
        msg = self.messages.get(message_sid)
        if msg is None:
            reply = _not_found(path)
            reply.note = f"{message_sid} unknown"
            return reply
        if msg.status in ("queued", "accepted", "sending"):
            message = "Cannot delete message because delivery has not been completed."
            return twilio_error(20009, message, 409, f"{msg.sid} refused 20009: {msg.status}")
        self.stats.deletes += 1
        del self.messages[message_sid]
        self.ledger.remove(msg)
        same_to = self.by_to.get(msg.to, [])
        if msg in same_to:
            same_to.remove(msg)
        return Reply(204, b"", f"{msg.sid} deleted")

    def list(self, account_sid: str, authorization: str | None, path: str, query: str) -> Reply:
        denied = self.check_auth(authorization, account_sid)
        if denied is not None:
            return denied
        self.stats.lists += 1
        q = dict(parse_qsl(query, keep_blank_values=True))

        def refuse(message: str) -> Reply:
            return twilio_error(20001, message, 400, f"refused 20001: {message}")

        try:
            page_size = int(q.get("PageSize") or 50)
            page = int(q.get("Page") or 0)
        except ValueError:
            return refuse("PageSize and Page must be integers")
        if not 1 <= page_size <= 1000 or page < 0:
            return refuse("PageSize must be within 1-1000 and Page >= 0")

        filters: list[tuple[str, str]] = []
        checks: list[Callable[[SimMessage], bool]] = []
        for name in ("To", "From"):
            value = q.get(name)
            if value:
                filters.append((name, value))
                checks.append(_address_check(name, value))
        for name in ("DateSent", "DateSent>", "DateSent<"):
            raw = q.get(name)
            if not raw:
                continue
            try:
                when = _parse_when(raw)
            except ValueError:
                return refuse(f"Invalid {name}: {raw}")
            filters.append((name, raw))
            checks.append(_date_check(name, when))

        to = q.get("To")
        source = self.by_to.get(to, []) if to else self.ledger
        matching = [m for m in reversed(source) if all(c(m) for c in checks)]
        token = q.get("PageToken")
        if token:
            anchor = self.messages.get(token[2:]) if token[:2] in ("PA", "PB") else None
            if anchor is None:
                return refuse(f"Invalid PageToken: {token}")
            if token.startswith("PA"):
                after = [m for m in matching if m.seq < anchor.seq]
                items = after[:page_size]
                has_next = len(after) > page_size
                has_prev = any(m.seq >= anchor.seq for m in matching)
            else:
                before = [m for m in matching if m.seq > anchor.seq]
                items = before[-page_size:]
                has_prev = len(before) > page_size
                has_next = any(m.seq <= anchor.seq for m in matching)
        else:
            start_at = page * page_size
            items = matching[start_at : start_at + page_size]
            has_next = len(matching) > start_at + page_size
            has_prev = page > 0 and bool(items)

        def page_uri(number: int, page_token: str | None = None) -> str:
            params = [*filters, ("PageSize", str(page_size)), ("Page", str(number))]
            if page_token:
                params.append(("PageToken", page_token))
            return f"{path}?{urlencode(params)}"

        start = page * page_size
        payload = {
            "end": start + max(len(items) - 1, 0),
            "first_page_uri": page_uri(0),
            "messages": [m.resource() for m in items],
            "next_page_uri": page_uri(page + 1, f"PA{items[-1].sid}")
            if has_next and items
            else None,
            "page": page,
            "page_size": page_size,
            "previous_page_uri": page_uri(page - 1, f"PB{items[0].sid}")
            if has_prev and items and page > 0
            else None,
            "start": start,
            "uri": page_uri(page, token),
        }
        more = "yes" if payload["next_page_uri"] else "no"
        return _json(payload, note=f"{len(items)} message(s), next={more}")

    # ------------------------------------------------------------- /_sim/ routes

    def _health(self, _query: str) -> Reply:
        return _json({"ok": True})

    def _sim_messages(self, query: str) -> Reply:
        if not query:
            return _json([m.ledger_entry() for m in self.ledger])
        q = dict(parse_qsl(query, keep_blank_values=True))
        try:
            since = int(q.get("since_seq") or 0)
            limit = int(q["limit"]) if q.get("limit") else None
        except ValueError:
            since, limit = -1, None
        if since < 0 or (limit is not None and limit < 1):
            message = "since_seq must be an integer >= 0 and limit an integer >= 1"
            return twilio_error(20001, message, 400, f"refused 20001: {message}")
        start = bisect.bisect_right(self.ledger, since, key=_seq_of)
        stop = len(self.ledger) if limit is None else start + limit
        page = [m.ledger_entry() | {"seq": m.seq} for m in self.ledger[start:stop]]
        return _json(page, note=f"{len(page)} entries after seq {since}")

    def _sim_stats(self, _query: str) -> Reply:
        return _json(dataclasses.asdict(self.stats))

    def _sim_inbound(self, body: bytes) -> Reply:
        """``POST /_sim/inbound`` ``{"from", "to", "body", "url"}``: a person texts one of
        the account's numbers. Like Twilio, the simulator POSTs the incoming-message
        webhook to ``url`` (form-encoded, ``X-Twilio-Signature`` over the URL and params),
        once, in the background; answers 202 with the new message's sid."""
        try:
            req = orjson.loads(body or b"{}")
            sender, to, text, url = req["from"], req["to"], req.get("body", ""), req["url"]
            if not all(isinstance(v, str) for v in (sender, to, text, url)):
                raise TypeError("from, to, body and url must be strings")
            target = Target.parse(url)
        except (ValueError, KeyError, TypeError) as exc:
            return _json({"error": f"bad inbound request: {exc}"}, 400)
        sid = "SM" + uuid.uuid4().hex
        params = [
            ("ToCountry", "US"), ("ToState", ""), ("SmsMessageSid", sid), ("NumMedia", "0"),
            ("ToCity", ""), ("FromZip", ""), ("SmsSid", sid), ("FromState", ""),
            ("SmsStatus", "received"), ("FromCity", ""), ("Body", text), ("FromCountry", "US"),
            ("To", to), ("ToZip", ""), ("NumSegments", str(num_segments(text))),
            ("MessageSid", sid), ("AccountSid", self.config.account_sid), ("From", sender),
            ("ApiVersion", "2010-04-01"),
        ]  # fmt: skip
        signature = compute_signature(self.config.auth_token, url, params).encode("ascii")
        headers = (
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"User-Agent: TwilioProxy/1.1\r\n"
            b"X-Twilio-Signature: %s\r\n"
        ) % signature
        payload = form_encode(params).encode("utf-8")

        async def deliver() -> None:
            try:
                code = await self.http.post(target, headers, payload)
                log.info("INBOUND %s %s -> %s : HTTP %s", sid, mask_address(sender), url, code)
            except Exception as exc:  # logged, like a failed callback
                log.warning("INBOUND %s -> %s failed: %s", sid, url, exc)

        self.spawn(deliver(), f"inbound-{sid}")
        return _json({"sid": sid, "status": "received"}, 202, note=f"inbound {sid} to {url}")

    def _sim_reset(self, _query: str) -> Reply:
        cleared = self.reset()
        return _json({"ok": True, "cleared": cleared}, note=f"cleared {cleared} message(s)")

    # ------------------------------------------------------------------ lifecycle

    def _schedule(self, msg: SimMessage, step: int) -> None:
        loop = asyncio.get_running_loop()
        if self._receipt_delay_s:
            loop.call_later(self._receipt_delay_s, self._advance, msg, step)
        else:
            loop.call_soon(self._advance, msg, step)

    def _advance(self, msg: SimMessage, step: int) -> None:
        """Moves the message to its next status (on schedule: a timer, not a task), and
        queues that status's callback."""
        if self.messages.get(msg.sid) is not msg:  # reset in the meantime
            return
        steps = msg.steps()
        status = steps[step]
        msg.status = status
        msg.date_updated = _now()
        if msg.from_ is None:
            msg.from_ = SERVICE_SENDER
            msg.num_segments = num_segments(msg.body)
        if status in ("undelivered", "failed"):
            msg.error_code = msg.final_error
        if msg.status_callback:
            self._queue_callback(msg, status)
        if step + 1 < len(steps):
            self._schedule(msg, step + 1)

    def _queue_callback(self, msg: SimMessage, status: str) -> None:
        config = self.config
        url = msg.status_callback
        assert url is not None
        if config.callback_loss_rate and self.rng.random() < config.callback_loss_rate:
            self.stats.callbacks_lost += 1
            log.debug(
                "CALLBACK %s %s -> %s : lost (SIM_TWILIO_CALLBACK_LOSS_RATE %g), never sent",
                msg.sid,
                status,
                url,
                config.callback_loss_rate,
            )
            return
        params = callback_params(msg, status)
        signer = self._signer.copy()
        signer.update((url + "".join(n + v for n, v in sorted(params))).encode("utf-8"))
        signature = base64.b64encode(signer.digest())
        headers = (
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"User-Agent: TwilioProxy/1.1\r\n"
            b"X-Twilio-Signature: %s\r\n"
            b"I-Twilio-Idempotency-Token: %s\r\n"
            b"X-Home-Region: us1\r\n"
        ) % (signature, str(uuid.uuid4()).encode("ascii"))
        pending = PendingCallback(status, form_encode(params).encode("ascii"), headers)
        self.stats.callbacks_pending += 1
        if msg.outbox is None:
            msg.outbox = collections.deque()
        msg.outbox.append(pending)
        if msg.sender is None:
            msg.sender = self.spawn(self._send_callbacks(msg), f"callbacks-{msg.sid}")

    async def _send_callbacks(self, msg: SimMessage) -> None:
        """Sends the message's queued callbacks one after the other (each with its
        retry), then ends; the next status's callback starts a new one."""
        outbox = msg.outbox
        assert outbox is not None
        try:
            while outbox:
                pending = outbox.popleft()
                delivered = await self._send_callback(msg, pending)
                stats = self.stats
                stats.callbacks_pending -= 1
                if delivered:
                    stats.callbacks_sent += 1
                else:
                    stats.callbacks_failed += 1
        finally:
            msg.sender = None
            if not outbox:  # free what a stored message no longer needs
                msg.outbox = None
                if msg.status == msg.steps()[-1]:
                    msg.target = None

    async def _send_callback(self, msg: SimMessage, pending: PendingCallback) -> bool:
        """POSTs one signed status callback; retries once (after 1 s) when it cannot
        connect or gets a 5xx answer. Whether it was answered 2xx/3xx."""
        target = msg.target
        attempts = 2
        for attempt in range(1, attempts + 1):
            started = time.perf_counter()
            code: int | None = None
            if not isinstance(target, Target):  # a URL no request can be made to
                outcome, retry = target or "no callback URL", False
            else:
                try:
                    code = await self.http.post(target, pending.headers, pending.body)
                except Exception as exc:  # refused, reset, timeout, TLS, not HTTP
                    outcome, retry = f"{type(exc).__name__}: {exc}".rstrip(": "), True
                else:
                    outcome, retry = f"HTTP {code}", code >= 500
            if log.isEnabledFor(self.log_level):
                if not retry:
                    what = "done" if code is not None and code < 400 else "not retried"
                elif attempt < attempts:
                    what = f"failed, retry in {self.config.callback_retry_delay_s:g}s"
                else:
                    what = "failed, giving up"
                log.log(
                    self.log_level,
                    "CALLBACK %s %s -> %s : %s in %.1f ms (attempt %d/%d, %s)",
                    msg.sid,
                    pending.status,
                    msg.status_callback,
                    outcome,
                    (time.perf_counter() - started) * 1000,
                    attempt,
                    attempts,
                    what,
                )
            if not retry:
                return code is not None and code < 400
            if attempt < attempts:
                await asyncio.sleep(self.config.callback_retry_delay_s)
        return False


def _address_check(name: str, value: str) -> Callable[[SimMessage], bool]:
    if name == "To":
        return lambda m: m.to == value
    return lambda m: m.from_ == value


def _date_check(name: str, when: date | datetime) -> Callable[[SimMessage], bool]:
    if name == "DateSent":
        day = when.date() if isinstance(when, datetime) else when
        return lambda m: m.date_sent.date() == day
    if isinstance(when, datetime):
        if name == "DateSent>":
            return lambda m: m.date_sent >= when
        return lambda m: m.date_sent <= when
    if name == "DateSent>":
        return lambda m: m.date_sent.date() >= when
    return lambda m: m.date_sent.date() <= when


# ------------------------------------------------------------------------------ ASGI

AsgiMessage = MutableMapping[str, Any]
AsgiReceive = Callable[[], Awaitable[AsgiMessage]]
AsgiSend = Callable[[AsgiMessage], Awaitable[None]]


class SimApp:
    """The simulator as an ASGI app (lifespan and http), for in-process use:
    ``httpx.ASGITransport(app=create_app(config))`` or any ASGI server. The standalone
    process uses :mod:`simulators.core.server` instead, which is much cheaper."""

    def __init__(self, config: SimConfig) -> None:
        self.sim = Simulator(config)

    async def __call__(self, scope: AsgiMessage, receive: AsgiReceive, send: AsgiSend) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        sim = self.sim
        path: str = scope["path"]
        latency = sim.latency_for(path)
        if latency:
            await asyncio.sleep(latency)
        chunks: list[bytes] = []
        more = True
        while more:
            event = await receive()
            if event["type"] == "http.disconnect":
                return  # the client left: nothing is handled
            chunks.append(event.get("body", b""))
            more = event.get("more_body", False)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = scope.get("query_string", b"").decode("latin-1")
        method: str = scope["method"]
        started = time.perf_counter()
        reply = sim.handle(
            method,
            path,
            query,
            headers.get("authorization"),
            headers.get("content-type"),
            b"".join(chunks),
        )
        raw_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(reply.body)).encode()),
            *((k.lower().encode(), v.encode("latin-1")) for k, v in reply.headers),
        ]
        await send({"type": "http.response.start", "status": reply.status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else reply.body})
        sim.log_request(
            method, path, query, reply.status, time.perf_counter() - started, reply.note
        )

    async def _lifespan(self, receive: AsgiReceive, send: AsgiSend) -> None:
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                log_ready(self.sim.config, "in-process (ASGI)")
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                cancelled = await self.sim.close()
                log.info(
                    "Twilio simulator stopped (%d pending callback task(s) cancelled)", cancelled
                )
                await send({"type": "lifespan.shutdown.complete"})
                return


def log_ready(config: SimConfig, where: str) -> None:
    log.info(
        "Twilio simulator ready on %s: account %s, receipt delay %d ms, latency %d ms, "
        "failure rate %g, API error rate %g, callback loss rate %g, seed %s, "
        "request logs at %s",
        where,
        config.account_sid,
        config.receipt_delay_ms,
        config.latency_ms,
        config.failure_rate,
        config.api_error_rate,
        config.callback_loss_rate,
        config.seed,
        "INFO" if config.log_requests else "DEBUG",
    )


def create_app(config: SimConfig) -> SimApp:
    """The simulator as an ASGI app; its state is ``app.sim``."""
    return SimApp(config)
