"""A local Vonage SMS API simulator: ``POST /sms/json`` over TLS, and signed delivery
receipts.

The official SDK (``vonage``) builds ``https://{rest_host}/sms/json`` and cannot be given
another scheme, so this simulator serves TLS with a certificate from its own CA
(``SIM_VONAGE_CA_DIR``: ``ca.pem``, and ``ca-bundle.pem`` = the public roots + that CA,
for ``REQUESTS_CA_BUNDLE``); the SDK reaches it with ``HttpClientOptions(rest_host=
"127.0.0.1:<port>")`` -- configuration, not a patch.

Wire format, as Vonage's: a form with ``from``, ``to`` (digits), ``text``, ``client-ref``,
``callback``, ``status-report-req``; credentials as HTTP Basic (``api_key:api_secret``,
what the SDK sends), or ``api_key`` + ``api_secret`` in the form. The answer is always
HTTP 200 with ``{"message-count": "1", "messages": [{"to", "message-id", "status": "0",
"remaining-balance", "message-price", "network", "client-ref"}]}``; a refusal is a
non-zero ``status`` with ``error-text`` (1 Throttled, 2 Missing Parameters, 3 Invalid
Parameters, 4 Invalid Credentials, 5 Internal Error, 6 Invalid Message, 7 Number Barred,
9 Partner Quota Violation, 15 Invalid Sender Address, 29 Non-Whitelisted Destination).

Each accepted message gets delivery receipts (``accepted``, then ``delivered``,
``expired`` or ``failed``) after the receipt delay, POSTed form-encoded to its
``callback`` (or ``SIM_VONAGE_DLR_URL``) with Vonage's fields (``msisdn``, ``to``,
``network-code``, ``messageId``, ``price``, ``status``, ``scts``, ``err-code``,
``api-key``, ``client-ref``, ``message-timestamp``) and signed as Vonage signs them:
``timestamp``, ``nonce`` and ``sig`` = HMAC-SHA256, with the account's signature secret,
of ``&key=value`` for every other parameter in key order (``&`` and ``=`` in values
replaced by ``_``).

Recipient fixtures (Hermes's own: Vonage documents none), by number:
``+14155550181`` accepted, delivered; ``+14155550182`` accepted, failed (err-code 1
unknown subscriber); ``+14155550183`` accepted, expired; ``+14155550184`` refused:
status 29 Non-Whitelisted Destination; ``+14155550185`` the first send is refused with
status 1 Throttled, later ones accepted; ``+14155550186`` the first send answers HTTP 500;
``+14155550187`` the first send is accepted but answered 20 s later; ``+14155550188``
every send answers HTTP 500 (an outage: what failover is for). Any other number:
accepted, delivered.

Configuration (environment)
---------------------------
``SIM_VONAGE_API_KEY`` / ``SIM_VONAGE_API_SECRET``   the account's credentials
``SIM_VONAGE_SIGNATURE_SECRET``  the secret delivery receipts are signed with
``SIM_VONAGE_DLR_URL``          where receipts go when a message names no callback
``SIM_VONAGE_CA_DIR``           the CA and the server certificate (a temporary directory)
``SIM_VONAGE_LATENCY_MS``       delay before answering each send (0)
``SIM_VONAGE_RECEIPT_DELAY_MS`` delay between a message's receipts (200)

Endpoints: ``POST /sms/json``; ``GET /_sim/health``, ``GET /_sim/messages``, ``GET
/_sim/stats``, ``POST /_sim/reset``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import os
import ssl
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import certifi
import orjson

from simulators.core.base import Reply, SimBase, Tasks, env_int
from simulators.core.http_client import HttpClient, Target
from simulators.core.tls import server_identity

log = logging.getLogger("simulators.vonage")

SEND_PATH = "/sms/json"
DEFAULT_API_KEY = "simkey01"
DEFAULT_API_SECRET = "simulator-vonage-api-secret"
DEFAULT_SIGNATURE_SECRET = "simulator-vonage-signature-secret"

PLANS: dict[str, list[str]] = {
    "+14155550181": ["accepted", "delivered"],
    "+14155550182": ["accepted", "failed"],
    "+14155550183": ["accepted", "expired"],
}
# number -> (status, error text, only the first send)
REFUSALS: dict[str, tuple[str, str, bool]] = {
    "+14155550184": ("29", "Non White-listed Destination - rejected", False),
    "+14155550185": ("1", "Throughput Rate Exceeded - please wait [ 1000 ] and retry", True),
}
ERROR500_ONCE = "+14155550186"
ERROR500_ALWAYS = "+14155550188"
TIMEOUT_ONCE = "+14155550187"


@dataclass(frozen=True)
class VonageConfig:
    api_key: str = DEFAULT_API_KEY
    api_secret: str = DEFAULT_API_SECRET
    signature_secret: str = DEFAULT_SIGNATURE_SECRET
    dlr_url: str | None = None
    ca_dir: str | None = None
    latency_ms: int = 0
    receipt_delay_ms: int = 200

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> VonageConfig:
        e = dict(os.environ if env is None else env)
        return cls(
            api_key=e.get("SIM_VONAGE_API_KEY") or DEFAULT_API_KEY,
            api_secret=e.get("SIM_VONAGE_API_SECRET") or DEFAULT_API_SECRET,
            signature_secret=e.get("SIM_VONAGE_SIGNATURE_SECRET") or DEFAULT_SIGNATURE_SECRET,
            dlr_url=e.get("SIM_VONAGE_DLR_URL") or None,
            ca_dir=e.get("SIM_VONAGE_CA_DIR") or None,
            latency_ms=env_int(e, "SIM_VONAGE_LATENCY_MS", 0),
            receipt_delay_ms=env_int(e, "SIM_VONAGE_RECEIPT_DELAY_MS", 200),
        )


def sign(secret: str, params: dict[str, str]) -> str:
    """Vonage's signature of ``params`` (without ``sig``), written independently of the
    SDK's ``Auth.check_signature`` that Hermes verifies with."""
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)
    for key in sorted(params):
        value = params[key].replace("&", "_").replace("=", "_")
        mac.update(f"&{key}={value}".encode())
    return mac.hexdigest()


@dataclass
class VonageSms:
    message_id: str
    sender: str
    to: str
    text: str
    client_ref: str | None
    callback: str | None
    plan: list[str]
    receipts: list[str] = field(default_factory=list)

    def ledger_entry(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "from": self.sender,
            "to": self.to,
            "text": self.text,
            "client_ref": self.client_ref,
            "callback": self.callback,
            "plan": self.plan,
            "receipts": self.receipts,
        }


def _answer(to: str, status: str, extra: dict[str, str]) -> dict[str, Any]:
    return {"message-count": "1", "messages": [{"to": to, "status": status} | extra]}


class VonageSimulator(SimBase):
    """The Vonage simulator's memory and request handling (a core ``Handler``)."""

    name = "Vonage"
    logger = log

    def __init__(self, config: VonageConfig, port: int) -> None:  # noqa: ARG002
        self.config = config
        ca_dir = (
            Path(config.ca_dir) if config.ca_dir else Path(tempfile.mkdtemp(prefix="vonage-sim-"))
        )
        ca, cert, key = server_identity(
            ca_dir, "Hermes simulator Vonage CA", ["127.0.0.1", "localhost"]
        )
        bundle = ca_dir / "ca-bundle.pem"
        bundle.write_bytes(Path(certifi.where()).read_bytes() + b"\n" + ca.read_bytes())
        self.ca_file = ca
        self.ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ssl_context.load_cert_chain(cert, key)
        self.messages: list[VonageSms] = []
        self.accepted = 0
        self.resets = 0
        self.stats: dict[str, int] = {}
        self.tasks = Tasks()
        self.http = HttpClient(timeout=15.0, max_connections=32)
        self._faulted: set[str] = set()

    # ----------------------------------------------------------------- Handler

    def latency_for(self, path: str) -> float:
        return self.config.latency_ms / 1000 if path == SEND_PATH else 0.0

    def error_reply(self, status: int, message: str) -> Reply:
        return Reply(status, orjson.dumps({"type": "about:blank", "title": message}))

    def log_ready(self, where: str) -> None:
        log.info("Vonage simulator ready on %s: CA %s", where, self.ca_file)

    async def close(self) -> int:
        n = await self.tasks.close()
        self.http.close()
        return n

    def handle(
        self,
        method: str,
        path: str,
        query: str,  # noqa: ARG002
        authorization: str | None,
        content_type: str | None,  # noqa: ARG002
        body: bytes,
    ) -> Reply:
        if path == SEND_PATH:
            if method != "POST":
                return self.error_reply(405, "POST only")
            return self.send(authorization, body)
        return self.sim_route(method, path) or self.error_reply(404, f"No route {path}")

    def ledger(self) -> list[Any]:
        return [m.ledger_entry() for m in self.messages]

    def forget(self) -> int:
        n = len(self.messages)
        self.tasks.cancel()
        self.messages.clear()
        self._faulted.clear()
        return n

    def _credentials_ok(self, authorization: str | None, form: dict[str, str]) -> bool:
        key, secret = form.get("api_key", ""), form.get("api_secret", "")
        scheme, _, encoded = (authorization or "").partition(" ")
        if scheme == "Basic":
            try:
                key, _, secret = base64.b64decode(encoded).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
        return hmac.compare_digest(key, self.config.api_key) and hmac.compare_digest(
            secret, self.config.api_secret
        )

    def send(self, authorization: str | None, body: bytes) -> Reply:
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        to_digits = form.get("to", "")
        if not self._credentials_ok(authorization, form):
            self._count("refused_4")
            return Reply(
                200, orjson.dumps(_answer(to_digits, "4", {"error-text": "Bad Credentials"}))
            )
        missing = [k for k in ("from", "to", "text") if not form.get(k)]
        if missing:
            return Reply(
                200,
                orjson.dumps(
                    _answer(to_digits, "2", {"error-text": f"Missing {', '.join(missing)}"})
                ),
            )
        if not to_digits.isdigit() or not 7 <= len(to_digits) <= 15:
            return Reply(
                200, orjson.dumps(_answer(to_digits, "3", {"error-text": "Invalid to address"}))
            )
        number = "+" + to_digits
        refusal = REFUSALS.get(number)
        if refusal is not None:
            status, text, once = refusal
            if not once or number not in self._faulted:
                self._faulted.add(number)
                self._count(f"refused_{status}")
                return Reply(
                    200, orjson.dumps(_answer(to_digits, status, {"error-text": text})), note=text
                )
        if number == ERROR500_ALWAYS or (number == ERROR500_ONCE and number not in self._faulted):
            self._faulted.add(number)
            self._count("http_500")
            return self.error_reply(500, "Internal Server Error")
        timeout = number == TIMEOUT_ONCE and number not in self._faulted
        if timeout:
            self._faulted.add(number)
        sms = VonageSms(
            message_id=str(uuid.uuid4()),
            sender=form["from"],
            to=number,
            text=form["text"],
            client_ref=form.get("client-ref") or None,
            callback=form.get("callback") or None,
            plan=list(PLANS.get(number, ["accepted", "delivered"])),
        )
        self.messages.append(sms)
        self.accepted += 1
        self._count("accepted")
        if form.get("status-report-req", "1") not in ("0", "false"):
            self.tasks.spawn(self._receipts(sms), f"vonage-dlr-{sms.message_id}")
        extra = {
            "message-id": sms.message_id,
            "remaining-balance": "10.00000000",
            "message-price": "0.00750000",
            "network": "310004",
        }
        if sms.client_ref:
            extra["client-ref"] = sms.client_ref
        return Reply(
            200,
            orjson.dumps(_answer(to_digits, "0", extra)),
            note=f"{number} -> {','.join(sms.plan)}",
            delay_s=20.0 if timeout else 0.0,
        )

    # ------------------------------------------------------------- receipts

    def _receipt(self, sms: VonageSms, status: str) -> dict[str, str]:
        now = datetime.now(UTC)
        params = {
            "msisdn": sms.to.lstrip("+"),
            "to": sms.sender,
            "network-code": "310004",
            "messageId": sms.message_id,
            "price": "0.00750000",
            "status": status,
            "scts": now.strftime("%y%m%d%H%M"),
            "err-code": {"failed": "1", "expired": "5"}.get(status, "0"),
            "api-key": self.config.api_key,
            "message-timestamp": now.strftime("%Y-%m-%d %H:%M:%S"),
            "timestamp": str(int(time.time())),
            "nonce": str(uuid.uuid4()),
        }
        if sms.client_ref:
            params["client-ref"] = sms.client_ref
        params["sig"] = sign(self.config.signature_secret, params)
        return params

    async def _receipts(self, sms: VonageSms) -> None:
        url = sms.callback or self.config.dlr_url
        for i, status in enumerate(sms.plan):
            await asyncio.sleep(self.config.receipt_delay_ms / 1000 * (1 if i else 0.5))
            sms.receipts.append(status)
            if url:
                await self._post(url, self._receipt(sms, status))

    async def _post(self, url: str, params: dict[str, str]) -> None:
        target = Target.parse(url)
        body = urlencode(params).encode()
        headers = b"Content-Type: application/x-www-form-urlencoded\r\n"
        for attempt in range(4):  # Vonage retries a receipt that is not answered 2xx
            started = time.perf_counter()
            try:
                code = await self.http.post(target, headers, body)
            except Exception as exc:
                log.info("DLR -> %s: %s", url, type(exc).__name__)
                code = 0
            else:
                log.info(
                    "DLR %s -> %s: HTTP %d in %.1f ms",
                    params["status"],
                    url,
                    code,
                    (time.perf_counter() - started) * 1000,
                )
            if 200 <= code < 300:
                self._count("receipts_delivered")
                return
            await asyncio.sleep(0.5 * (attempt + 1))
        self._count("receipts_failed")
