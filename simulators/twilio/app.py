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
``SIM_TWILIO_SEED``             seed of the random generator (unset: not reproducible)

Endpoints
---------
``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``            create (201)
``GET  /2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}.json`` fetch (404: 20404)
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
    date_created`` (ISO 8601) - the carrier's ledger.
``POST /_sim/reset``    forget every message and cancel pending callbacks.

All Twilio endpoints need HTTP Basic auth ``AccountSid:AuthToken`` and the path SID must
be that account, else 401 with code 20003.

Create validation (HTTP 400, nothing created)
---------------------------------------------
Missing ``To`` -> 21604; neither ``From`` nor ``MessagingServiceSid`` -> 21603; missing
``Body`` (and no ``MediaUrl``/``ContentSid``) -> 21602; body over 1600 characters ->
21617; ``StatusCallback`` not an absolute http(s) URL -> 21609; malformed
``MessagingServiceSid`` -> 21701; ``From`` that is not E.164, a short code or an
alphanumeric sender ID -> 21212; ``To`` that is not E.164 -> 21211.

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
callbacks are sent in order (each waits for the previous one and its retry).
``date_sent`` is set at creation (real Twilio fills it in when the message is sent).

State lives in memory and is only touched from the event loop, in code without
``await`` between reading and writing it (every endpoint is ``async def``), so it needs
no lock.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
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
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("simulators.twilio")

API_VERSION = "2010-04-01"
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
}

_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_SHORT_CODE = re.compile(r"[0-9]{3,8}")
_ALPHA_SENDER = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")
_SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")
_DATE_ONLY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

_GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = set("\f^{}\\[~]|€")


# --------------------------------------------------------------------------- config


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    return int(raw) if raw else default


def _env_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    return float(raw) if raw else default


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

    def __post_init__(self) -> None:
        if not re.fullmatch(r"AC[0-9A-Za-z]{32}", self.account_sid):
            raise ValueError(f"account SID must be AC + 32 characters: {self.account_sid!r}")
        if not self.auth_token:
            raise ValueError("auth token must not be empty")
        if self.latency_ms < 0 or self.receipt_delay_ms < 0:
            raise ValueError("delays must be >= 0")
        for name in ("failure_rate", "api_error_rate"):
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
            latency_ms=_env_int(e, "SIM_TWILIO_LATENCY_MS", 0),
            receipt_delay_ms=_env_int(e, "SIM_TWILIO_RECEIPT_DELAY_MS", 200),
            failure_rate=_env_float(e, "SIM_TWILIO_FAILURE_RATE", 0.0),
            api_error_rate=_env_float(e, "SIM_TWILIO_API_ERROR_RATE", 0.0),
            seed=int(seed) if seed else None,
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


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _rfc2822(dt: datetime) -> str:
    return format_datetime(dt)  # "Tue, 05 Mar 2024 10:00:00 +0000", as Twilio writes them


def num_segments(body: str) -> int:
    """SMS segments: GSM-7 (160 a message, 153 a segment; extension characters count
    twice) or else UCS-2 (70 / 67 UTF-16 code units)."""
    if not body:
        return 1
    if all(c in _GSM7_BASIC or c in _GSM7_EXTENDED for c in body):
        units = sum(2 if c in _GSM7_EXTENDED else 1 for c in body)
        single, multi = 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2
        single, multi = 70, 67
    return 1 if units <= single else math.ceil(units / multi)


def twilio_error(code: int, message: str, status: int) -> JSONResponse:
    """Twilio's (legacy) error JSON, which the SDK turns into TwilioRestException."""
    return JSONResponse(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status_code=status,
    )


def _note(request: Request, text: str) -> None:
    """Detail for the request's log line (read by the logging middleware)."""
    request.scope.setdefault("state", {})["sim_log"] = text


def _field(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) and value != "" else None


def _parse_when(raw: str) -> date | datetime:
    if _DATE_ONLY.fullmatch(raw):
        return date.fromisoformat(raw)
    dt = datetime.fromisoformat(raw)
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


# ----------------------------------------------------------------------------- state


@dataclass
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

    @property
    def uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}.json"

    def steps(self) -> list[str]:
        if self.final_status == "failed":
            return ["queued", "failed"]
        return ["queued", "sent", self.final_status]

    def resource(self) -> dict[str, Any]:
        """The Message resource, as Twilio's API returns it."""
        base = self.uri.removesuffix(".json")
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": _rfc2822(self.date_created),
            "date_sent": _rfc2822(self.date_sent),
            "date_updated": _rfc2822(self.date_updated),
            "direction": "outbound-api",
            "error_code": self.error_code,
            "error_message": ERROR_MESSAGES.get(self.error_code) if self.error_code else None,
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
            "uri": self.uri,
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
            "date_created": self.date_created.isoformat(),
        }


class SimState:
    """The simulator's memory: messages by SID, the ledger in acceptance order, the
    random generator and the pending background tasks."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.messages: dict[str, SimMessage] = {}
        self.ledger: list[SimMessage] = []
        self.rng = random.Random(config.seed)
        self.tasks: set[asyncio.Task[None]] = set()
        self.http: httpx.AsyncClient | None = None
        self._seq = itertools.count(1)

    def next_seq(self) -> int:
        return next(self._seq)

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s crashed", task.get_name(), exc_info=task.exception())

    async def cancel_tasks(self) -> int:
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        return len(tasks)

    def reset(self) -> int:
        count = len(self.ledger)
        for task in list(self.tasks):
            task.cancel()
        self.messages.clear()
        self.ledger.clear()
        return count


# ------------------------------------------------------------------------- callbacks


async def _lifecycle(state: SimState, msg: SimMessage) -> None:
    """Moves the message through its statuses on schedule. Callbacks go out from their
    own tasks, chained so that a message's callbacks arrive in order, without a slow
    or failing callback URL holding back the message's status."""
    delay = state.config.receipt_delay_ms / 1000
    previous: asyncio.Task[None] | None = None
    for status in msg.steps():
        await asyncio.sleep(delay)
        if state.messages.get(msg.sid) is not msg:  # reset in the meantime
            return
        msg.status = status
        msg.date_updated = _now()
        if msg.from_ is None:
            msg.from_ = SERVICE_SENDER
            msg.num_segments = num_segments(msg.body)
        if status in ("undelivered", "failed"):
            msg.error_code = msg.final_error
        if msg.status_callback:
            params = callback_params(msg, status)
            previous = state.spawn(
                _send_callback(state, msg.sid, msg.status_callback, params, after=previous),
                name=f"callback-{msg.sid}-{status}",
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


async def _send_callback(
    state: SimState,
    sid: str,
    url: str,
    params: list[tuple[str, str]],
    after: asyncio.Task[None] | None,
) -> None:
    """POSTs one signed status callback; retries once (after 1 s) when it cannot connect
    or gets a 5xx answer. Waits for the message's previous callback first."""
    if after is not None:
        await asyncio.wait([after])
    http = state.http
    assert http is not None
    status = dict(params)["MessageStatus"]
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": "TwilioProxy/1.1",
        "X-Twilio-Signature": compute_signature(state.config.auth_token, url, params),
        "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
        "X-Home-Region": "us1",
    }
    body = urlencode(params)
    attempts = 2
    for attempt in range(1, attempts + 1):
        started = time.perf_counter()
        code: int | None = None
        try:
            resp = await http.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            outcome = f"{type(exc).__name__}: {exc}".rstrip(": ")
        else:
            code = resp.status_code
            outcome = f"HTTP {code}"
        retry = code is None or code >= 500
        took = (time.perf_counter() - started) * 1000
        if not retry:
            what = "done" if code is not None and code < 400 else "not retried"
        elif attempt < attempts:
            what = f"failed, retry in {state.config.callback_retry_delay_s:g}s"
        else:
            what = "failed, giving up"
        log.info(
            "CALLBACK %s %s -> %s : %s in %.1f ms (attempt %d/%d, %s)",
            sid,
            status,
            url,
            outcome,
            took,
            attempt,
            attempts,
            what,
        )
        if not retry:
            return
        if attempt < attempts:
            await asyncio.sleep(state.config.callback_retry_delay_s)


# ------------------------------------------------------------------------ middleware


class _ApiMiddleware:
    """Simulated latency on the Twilio API, and one log line per request."""

    def __init__(self, app: ASGIApp, latency_ms: int) -> None:
        self.app = app
        self.latency_s = latency_ms / 1000

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if self.latency_s and path.startswith(f"/{API_VERSION}/"):
            await asyncio.sleep(self.latency_s)
        state: dict[str, Any] = scope.setdefault("state", {})
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            took = (time.perf_counter() - started) * 1000
            query = scope.get("query_string", b"").decode("latin-1")
            target = f"{path}?{query}" if query else path
            detail = state.get("sim_log")
            level = logging.DEBUG if path == "/_sim/health" else logging.INFO
            log.log(
                level,
                "API %s %s -> %d in %.1f ms%s",
                scope["method"],
                target,
                status,
                took,
                f" | {detail}" if detail else "",
            )


# ------------------------------------------------------------------------------- app


def create_app(config: SimConfig) -> FastAPI:
    state = SimState(config)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # The 15 s applies to each request, not to waiting for a free connection: a
        # burst of callbacks queues for the pool instead of timing out in it.
        timeout = httpx.Timeout(config.callback_timeout_s, pool=None)
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(
            timeout=timeout, limits=limits, follow_redirects=False
        ) as http:
            state.http = http
            log.info(
                "Twilio simulator ready: account %s, receipt delay %d ms, latency %d ms, "
                "failure rate %g, API error rate %g, seed %s",
                config.account_sid,
                config.receipt_delay_ms,
                config.latency_ms,
                config.failure_rate,
                config.api_error_rate,
                config.seed,
            )
            try:
                yield
            finally:
                cancelled = await state.cancel_tasks()
                state.http = None
                log.info(
                    "Twilio simulator stopped (%d pending callback task(s) cancelled)", cancelled
                )

    app = FastAPI(
        title="Twilio simulator",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.sim = state
    app.add_middleware(_ApiMiddleware, latency_ms=config.latency_ms)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return twilio_error(
                20404, f"The requested resource {request.url.path} was not found", 404
            )
        if exc.status_code == 405:
            return twilio_error(20004, "Method not allowed", 405)
        return twilio_error(exc.status_code, str(exc.detail), exc.status_code)

    def unauthorized(request: Request, why: str) -> Response:
        _note(request, f"unauthorized: {why}")
        resp = twilio_error(20003, "Authenticate", 401)
        resp.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
        return resp

    def check_auth(request: Request, path_sid: str) -> Response | None:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return unauthorized(request, "no Basic credentials")
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return unauthorized(request, "malformed Basic credentials")
        user, _, password = decoded.partition(":")
        good_user = hmac.compare_digest(user.encode(), config.account_sid.encode())
        good_password = hmac.compare_digest(password.encode(), config.auth_token.encode())
        if not (good_user and good_password):
            return unauthorized(request, "wrong account SID or auth token")
        if path_sid != config.account_sid:
            return unauthorized(request, f"path account {path_sid} is not {config.account_sid}")
        return None

    def refuse(request: Request, code: int, message: str) -> Response:
        _note(request, f"refused {code}: {message}")
        return twilio_error(code, message, 400)

    def validate_create(
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
                _E164.fullmatch(from_)
                or _SHORT_CODE.fullmatch(from_)
                or _ALPHA_SENDER.fullmatch(from_)
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
                return (
                    21611,
                    "This 'From' number has exceeded the maximum number of queued messages.",
                )
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

    @app.post(f"/{API_VERSION}/Accounts/{{account_sid}}/Messages.json")
    async def create_message(account_sid: str, request: Request) -> Response:
        denied = check_auth(request, account_sid)
        if denied is not None:
            return denied
        form = await request.form()
        to, from_ = _field(form, "To"), _field(form, "From")
        service, body = _field(form, "MessagingServiceSid"), _field(form, "Body")
        callback = _field(form, "StatusCallback")
        media = [v for v in form.getlist("MediaUrl") if isinstance(v, str) and v]
        has_media = bool(media) or _field(form, "ContentSid") is not None
        problem = validate_create(to, from_, service, body, has_media, callback)
        if problem is not None:
            return refuse(request, *problem)
        assert to is not None
        if config.api_error_rate and state.rng.random() < config.api_error_rate:
            _note(request, f"simulated API error (rate {config.api_error_rate:g}), to={to}")
            return twilio_error(20500, "An internal server error has occurred", 500)

        if to in SIM_OUTCOMES:
            final_status, final_error = SIM_OUTCOMES[to]
        elif config.failure_rate and state.rng.random() < config.failure_rate:
            final_status, final_error = "undelivered", state.rng.choice(CARRIER_ERRORS)
        else:
            final_status, final_error = "delivered", None

        now = _now()
        text = body or ""
        msg = SimMessage(
            seq=state.next_seq(),
            sid="SM" + secrets.token_hex(16),
            account_sid=config.account_sid,
            to=to,
            from_=from_,
            body=text,
            status_callback=callback,
            messaging_service_sid=service,
            num_media=len(media),
            date_created=now,
            date_updated=now,
            date_sent=now,
            final_status=final_status,
            final_error=final_error,
            status="queued" if from_ is not None else "accepted",
            num_segments=num_segments(text) if from_ is not None else 0,
        )
        state.messages[msg.sid] = msg
        state.ledger.append(msg)
        state.spawn(_lifecycle(state, msg), name=f"lifecycle-{msg.sid}")
        outcome = final_status + (f" {final_error}" if final_error else "")
        _note(
            request,
            f"{msg.sid} to={to} from={from_ or service} status={msg.status} "
            f"-> {outcome} callback={callback or '-'}",
        )
        return JSONResponse(msg.resource(), status_code=201)

    @app.get(f"/{API_VERSION}/Accounts/{{account_sid}}/Messages/{{message_sid}}.json")
    async def fetch_message(account_sid: str, message_sid: str, request: Request) -> Response:
        denied = check_auth(request, account_sid)
        if denied is not None:
            return denied
        msg = state.messages.get(message_sid)
        if msg is None:
            _note(request, f"{message_sid} unknown")
            return twilio_error(
                20404, f"The requested resource {request.url.path} was not found", 404
            )
        _note(request, f"{msg.sid} status={msg.status}")
        return JSONResponse(msg.resource())

    @app.get(f"/{API_VERSION}/Accounts/{{account_sid}}/Messages.json")
    async def list_messages(account_sid: str, request: Request) -> Response:
        denied = check_auth(request, account_sid)
        if denied is not None:
            return denied
        q = request.query_params
        try:
            page_size = int(q.get("PageSize") or 50)
            page = int(q.get("Page") or 0)
        except ValueError:
            return refuse(request, 20001, "PageSize and Page must be integers")
        if not 1 <= page_size <= 1000 or page < 0:
            return refuse(request, 20001, "PageSize must be within 1-1000 and Page >= 0")

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
                return refuse(request, 20001, f"Invalid {name}: {raw}")
            filters.append((name, raw))
            checks.append(_date_check(name, when))

        matching = [m for m in reversed(state.ledger) if all(c(m) for c in checks)]
        token = q.get("PageToken")
        if token:
            anchor = state.messages.get(token[2:]) if token[:2] in ("PA", "PB") else None
            if anchor is None:
                return refuse(request, 20001, f"Invalid PageToken: {token}")
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

        path = request.url.path

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
        _note(
            request, f"{len(items)} message(s), next={'yes' if payload['next_page_uri'] else 'no'}"
        )
        return JSONResponse(payload)

    @app.get("/_sim/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/_sim/messages")
    async def sim_messages() -> list[dict[str, Any]]:
        return [m.ledger_entry() for m in state.ledger]

    @app.post("/_sim/reset")
    async def sim_reset(request: Request) -> dict[str, Any]:
        cleared = state.reset()
        _note(request, f"cleared {cleared} message(s)")
        return {"ok": True, "cleared": cleared}

    return app


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
