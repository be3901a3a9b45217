"""A local WhatsApp Business Cloud API simulator: sending messages, and the status
webhooks Meta posts back, signed as Meta signs them.

Wire format, as the Graph API's: ``POST /{version}/{phone-number-id}/messages`` with
``Authorization: Bearer <access token>`` and ``{"messaging_product": "whatsapp",
"recipient_type": "individual", "to": "14155550123", "type": "text", "text": {"body"},
"biz_opaque_callback_data"?}`` answers ``{"messaging_product": "whatsapp", "contacts":
[{"input", "wa_id"}], "messages": [{"id": "wamid...."}]}``; errors are Graph API errors,
``{"error": {"message", "type", "code", "error_data": {"messaging_product",
"details"}, "error_subcode"?, "fbtrace_id"}}``.

Each accepted message then gets its status webhooks (``sent``, then ``delivered`` and
``read``, or ``failed`` with ``errors``) after the receipt delay, posted to the app's
webhook (``SIM_WHATSAPP_WEBHOOK_URL``) as Meta posts them: ``{"object":
"whatsapp_business_account", "entry": [{"id": <WABA id>, "changes": [{"field":
"messages", "value": {"messaging_product", "metadata": {"display_phone_number",
"phone_number_id"}, "statuses": [{"id", "status", "timestamp", "recipient_id",
"biz_opaque_callback_data"?, "errors"?}]}}]}]}``, with ``X-Hub-Signature-256:
sha256=<HMAC-SHA256 of the body with the app secret>``. As Meta does when a webhook is
configured, the simulator first verifies the endpoint: ``GET <webhook>?hub.mode=subscribe
&hub.verify_token=<token>&hub.challenge=<n>`` must answer the challenge; nothing is
posted before that succeeds. A webhook answered with anything but 200 is retried (three
times here; Meta retries for days).

Recipient fixtures (Hermes's own: Meta documents none), by number:
``+14155550171`` sent, delivered, read; ``+14155550172`` sent, then failed (131026,
message undeliverable); ``+14155550173`` sent, never delivered (no final status);
``+14155550174`` refused: HTTP 400, code 131030 (recipient not in the allowed list);
``+14155550175`` the first send answers HTTP 400, code 130429 (rate limit hit), later
ones are accepted; ``+14155550176`` the first send answers HTTP 500, code 131000;
``+14155550177`` the first send is accepted but answered 20 s later (after any caller's
timeout). Any other number: sent, delivered, read. Template messages (``"type": "template"``)
of any name are accepted, except ``missing_template`` (HTTP 400, code 132001: no such
template in that language); the ledger's body is ``template:<name>/<language> <parameters>``.

Configuration (environment)
---------------------------
``SIM_WHATSAPP_ACCESS_TOKEN``   the system-user access token the API accepts
``SIM_WHATSAPP_APP_SECRET``     the app secret the webhooks are signed with
``SIM_WHATSAPP_VERIFY_TOKEN``   the verify token of the webhook handshake
``SIM_WHATSAPP_WEBHOOK_URL``    the app's webhook (unset: statuses are kept in the ledger only)
``SIM_WHATSAPP_PHONE_NUMBERS``  the business numbers: ``+14155550170=100000000000001,...``
                                (display number = phone-number id)
``SIM_WHATSAPP_LATENCY_MS``     delay before answering each send (0)
``SIM_WHATSAPP_RECEIPT_DELAY_MS`` delay between a message's status webhooks (200)
``SIM_WHATSAPP_SEED``           seed of the random generator

Endpoints: ``POST /{version}/{phone-number-id}/messages``; ``GET /_sim/health``, ``GET
/_sim/messages`` (the ledger), ``GET /_sim/stats``, ``POST /_sim/reset``, ``POST
/_sim/inbound`` (a person writes to a business number: Meta's signed ``messages``
webhook, e.g. to reply STOP).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import os
import random
import re
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import orjson

from simulators.core.base import Reply, SimBase, Tasks, env_int
from simulators.core.http_client import HttpClient, Target

log = logging.getLogger("simulators.whatsapp")

DEFAULT_ACCESS_TOKEN = "EAAsimulator-whatsapp-access-token"
DEFAULT_APP_SECRET = "simulator-whatsapp-app-secret"
DEFAULT_VERIFY_TOKEN = "simulator-whatsapp-verify-token"
DEFAULT_PHONE_NUMBERS = "+14155550170=100000000000001"
WABA_ID = "200000000000001"
# The one template name the simulator does not know (132001).
TEMPLATE_MISSING = "missing_template"
SEND_PATH = re.compile(r"^/v[0-9]+\.[0-9]+/([0-9]+)/messages$")

# number -> (status plan, or an API refusal: (HTTP status, code, message), once?)
PLANS: dict[str, list[str]] = {
    "+14155550171": ["sent", "delivered", "read"],
    "+14155550172": ["sent", "failed"],
    "+14155550173": ["sent"],
}
REFUSALS: dict[str, tuple[int, int, str, bool]] = {
    "+14155550174": (400, 131030, "Recipient phone number not in allowed list", False),
    "+14155550175": (400, 130429, "Rate limit hit", True),
    "+14155550176": (500, 131000, "Something went wrong", True),
}
TIMEOUT_ONCE = "+14155550177"


def parse_numbers(spec: str) -> dict[str, str]:
    """``+1555...=id,...`` -> {phone-number id: display number}."""
    out: dict[str, str] = {}
    for item in spec.split(","):
        if item.strip():
            number, _, pid = item.strip().partition("=")
            out[pid.strip()] = number.strip()
    return out


@dataclass(frozen=True)
class WhatsAppConfig:
    access_token: str = DEFAULT_ACCESS_TOKEN
    app_secret: str = DEFAULT_APP_SECRET
    verify_token: str = DEFAULT_VERIFY_TOKEN
    webhook_url: str | None = None
    phone_numbers: str = DEFAULT_PHONE_NUMBERS
    latency_ms: int = 0
    receipt_delay_ms: int = 200
    seed: int | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> WhatsAppConfig:
        e = dict(os.environ if env is None else env)
        seed = e.get("SIM_WHATSAPP_SEED", "").strip()
        return cls(
            access_token=e.get("SIM_WHATSAPP_ACCESS_TOKEN") or DEFAULT_ACCESS_TOKEN,
            app_secret=e.get("SIM_WHATSAPP_APP_SECRET") or DEFAULT_APP_SECRET,
            verify_token=e.get("SIM_WHATSAPP_VERIFY_TOKEN") or DEFAULT_VERIFY_TOKEN,
            webhook_url=e.get("SIM_WHATSAPP_WEBHOOK_URL") or None,
            phone_numbers=e.get("SIM_WHATSAPP_PHONE_NUMBERS") or DEFAULT_PHONE_NUMBERS,
            latency_ms=env_int(e, "SIM_WHATSAPP_LATENCY_MS", 0),
            receipt_delay_ms=env_int(e, "SIM_WHATSAPP_RECEIPT_DELAY_MS", 200),
            seed=int(seed) if seed else None,
        )


def signature(secret: str, body: bytes) -> str:
    """``X-Hub-Signature-256``'s value (written independently of the API's check)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _graph_error(status: int, code: int, message: str, details: str | None = None) -> Reply:
    error: dict[str, Any] = {
        "message": f"(#{code}) {message}",
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": base64.b64encode(secrets.token_bytes(9)).decode(),
    }
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return Reply(status, orjson.dumps({"error": error}), note=f"{code} {message}")


@dataclass
class WaMessage:
    wamid: str
    phone_number_id: str
    to: str
    body: str
    callback_data: str | None
    plan: list[str]
    created_at: float
    statuses: list[str] = field(default_factory=list)

    def ledger_entry(self) -> dict[str, Any]:
        return {
            "id": self.wamid,
            "phone_number_id": self.phone_number_id,
            "to": self.to,
            "body": self.body,
            "biz_opaque_callback_data": self.callback_data,
            "plan": self.plan,
            "statuses": self.statuses,
        }


class WhatsAppSimulator(SimBase):
    """The WhatsApp simulator's memory and request handling (a core ``Handler``)."""

    name = "WhatsApp"
    logger = log

    def __init__(self, config: WhatsAppConfig, port: int) -> None:  # noqa: ARG002
        self.config = config
        self.numbers = parse_numbers(config.phone_numbers)
        self.rng = random.Random(config.seed)
        self.messages: list[WaMessage] = []
        self.accepted = 0
        self.resets = 0
        self.stats: dict[str, int] = {}
        self.tasks = Tasks()
        self.http = HttpClient(timeout=15.0, max_connections=32)
        self.verified = asyncio.Event()
        self._verifying: asyncio.Task[None] | None = None
        self._faulted: set[str] = set()

    # ----------------------------------------------------------------- Handler

    def latency_for(self, path: str) -> float:
        return self.config.latency_ms / 1000 if path.endswith("/messages") else 0.0

    def error_reply(self, status: int, message: str) -> Reply:
        return _graph_error(status, 1 if status >= 500 else 100, message)

    def log_ready(self, where: str) -> None:
        log.info(
            "WhatsApp simulator ready on %s: numbers %s, webhook %s",
            where,
            self.numbers,
            self.config.webhook_url,
        )

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
        match = SEND_PATH.match(path)
        if match:
            if method != "POST":
                return _graph_error(400, 100, "Unsupported get request.")
            return self.send(match.group(1), authorization, body)
        if method == "POST" and path == "/_sim/inbound":
            return self.inbound(body)
        return self.sim_route(method, path) or _graph_error(
            400, 100, f"Unknown path components: {path}"
        )

    def ledger(self) -> list[Any]:
        return [m.ledger_entry() for m in self.messages]

    def stats_extra(self) -> dict[str, Any]:
        return {"verified": self.verified.is_set()}

    def forget(self) -> int:
        n = len(self.messages)
        self.tasks.cancel()
        self.messages.clear()
        self._faulted.clear()
        return n

    # ------------------------------------------------------------------ the API

    def send(self, phone_number_id: str, authorization: str | None, body: bytes) -> Reply:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme != "Bearer" or not hmac.compare_digest(token, self.config.access_token):
            self._count("unauthorized")
            return _graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")
        if phone_number_id not in self.numbers:
            self._count("unknown_number")
            return _graph_error(
                400,
                100,
                f"Unsupported post request. Object with ID '{phone_number_id}' does not exist.",
            )
        try:
            request = orjson.loads(body)
            assert isinstance(request, dict)
        except (orjson.JSONDecodeError, AssertionError):
            return _graph_error(400, 100, "Invalid parameter", "The body is not a JSON object.")
        if request.get("messaging_product") != "whatsapp":
            return _graph_error(
                400, 100, "Invalid parameter", "messaging_product must be whatsapp."
            )
        to = str(request.get("to") or "")
        if not re.fullmatch(r"\+?[1-9][0-9]{6,14}", to):
            return _graph_error(400, 100, "Invalid parameter", "to is not a phone number.")
        number = "+" + to.lstrip("+")
        kind = request.get("type", "text")
        template = request.get("template")
        if kind == "template":
            # A message template: name, language.code, body parameters. The simulator
            # knows every name but TEMPLATE_MISSING (Meta: 132001, not in that language).
            if not isinstance(template, dict) or not isinstance(template.get("name"), str):
                return _graph_error(400, 100, "Invalid parameter", "template.name is required.")
            language = template.get("language")
            if not isinstance(language, dict) or not isinstance(language.get("code"), str):
                return _graph_error(
                    400, 100, "Invalid parameter", "template.language.code is required."
                )
            if template["name"] == TEMPLATE_MISSING:
                self._count("refused_132001")
                return _graph_error(
                    400,
                    132001,
                    "Template name does not exist in the translation",
                    f"template name ({template['name']}) does not exist in {language['code']}",
                )
            params = [
                str(p.get("text"))
                for c in template.get("components") or []
                if isinstance(c, dict) and c.get("type") == "body"
                for p in c.get("parameters") or []
                if isinstance(p, dict)
            ]
            message_body = f"template:{template['name']}/{language['code']} " + " | ".join(params)
        else:
            text = request.get("text") or {}
            if kind != "text" or not isinstance(text, dict):
                return _graph_error(400, 131051, "Unsupported message type")
            given = text.get("body")
            if not isinstance(given, str) or not 1 <= len(given) <= 4096:
                return _graph_error(
                    400, 100, "Invalid parameter", "text.body takes 1 to 4096 characters."
                )
            message_body = given
        refusal = REFUSALS.get(number)
        if refusal is not None:
            status, code, message, once = refusal
            if not once or number not in self._faulted:
                self._faulted.add(number)
                self._count(f"refused_{code}")
                return _graph_error(status, code, message, message)
        timeout = number == TIMEOUT_ONCE and number not in self._faulted
        if timeout:
            self._faulted.add(number)
        callback = request.get("biz_opaque_callback_data")
        msg = WaMessage(
            wamid="wamid." + base64.b64encode(secrets.token_bytes(30)).decode(),
            phone_number_id=phone_number_id,
            to=number,
            body=message_body,
            callback_data=str(callback)[:512] if callback is not None else None,
            plan=list(PLANS.get(number, ["sent", "delivered", "read"])),
            created_at=time.time(),
        )
        self.messages.append(msg)
        self.accepted += 1
        self._count("accepted")
        self.tasks.spawn(self._statuses(msg), f"whatsapp-statuses-{msg.wamid}")
        answer = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": number.lstrip("+")}],
            "messages": [{"id": msg.wamid}],
        }
        return Reply(
            200,
            orjson.dumps(answer),
            note=f"{number} -> {','.join(msg.plan)}",
            delay_s=20.0 if timeout else 0.0,
        )

    # ------------------------------------------------------------- webhooks

    def inbound(self, body: bytes) -> Reply:
        """``POST /_sim/inbound {"from": "+1415...", "to": <business number>, "body"}``:
        a person writes to a business number; the app gets Meta's signed ``messages``
        webhook (a text message, ``from`` = the sender's wa_id)."""
        try:
            req = orjson.loads(body)
            sender, to, text = str(req["from"]), str(req["to"]), str(req["body"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return Reply(400, b'{"error": "from, to and body are required"}')
        ids = [pid for pid, number in self.numbers.items() if number == to]
        if not ids:
            return Reply(404, b'{"error": "not a business number of this simulator"}')
        wamid = "wamid." + base64.b64encode(secrets.token_bytes(24)).decode().rstrip("=")
        wa_id = sender.lstrip("+")
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": to.lstrip("+"), "phone_number_id": ids[0]},
            "contacts": [{"profile": {"name": "Simulated"}, "wa_id": wa_id}],
            "messages": [
                {
                    "from": wa_id,
                    "id": wamid,
                    "timestamp": str(int(time.time())),
                    "type": "text",
                    "text": {"body": text},
                }
            ],
        }
        payload = {
            "object": "whatsapp_business_account",
            "entry": [{"id": WABA_ID, "changes": [{"field": "messages", "value": value}]}],
        }
        self._count("inbound")
        self.tasks.spawn(self._publish(payload), f"whatsapp-inbound-{wamid}")
        return Reply(200, orjson.dumps({"id": wamid}))

    def _status(self, msg: WaMessage, status: str) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": msg.wamid,
            "status": status,
            "timestamp": str(int(time.time())),
            "recipient_id": msg.to.lstrip("+"),
        }
        if msg.callback_data is not None:
            item["biz_opaque_callback_data"] = msg.callback_data
        if status == "failed":
            item["errors"] = [
                {
                    "code": 131026,
                    "title": "Message undeliverable",
                    "message": "Message undeliverable",
                    "error_data": {"details": "Message Undeliverable."},
                }
            ]
        if status in ("sent", "delivered"):
            item["conversation"] = {"id": secrets.token_hex(16), "origin": {"type": "utility"}}
            item["pricing"] = {"billable": True, "pricing_model": "CBP", "category": "utility"}
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": WABA_ID,
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": self.numbers[
                                        msg.phone_number_id
                                    ].lstrip("+"),
                                    "phone_number_id": msg.phone_number_id,
                                },
                                "statuses": [item],
                            },
                        }
                    ],
                }
            ],
        }

    async def _statuses(self, msg: WaMessage) -> None:
        for i, status in enumerate(msg.plan):
            await asyncio.sleep(self.config.receipt_delay_ms / 1000 * (1 if i else 0.5))
            msg.statuses.append(status)
            await self._publish(self._status(msg, status))

    def _verify_once(self) -> bool:
        """Meta's webhook verification request; True when the challenge came back."""
        assert self.config.webhook_url
        challenge = str(self.rng.randrange(10**9, 10**10))
        query = urlencode(
            {
                "hub.mode": "subscribe",
                "hub.verify_token": self.config.verify_token,
                "hub.challenge": challenge,
            }
        )
        try:
            with urllib.request.urlopen(f"{self.config.webhook_url}?{query}", timeout=5) as r:
                ok = bool(r.status == 200 and r.read().decode().strip() == challenge)
        except (OSError, urllib.error.URLError) as exc:
            log.info("webhook verification -> %s: %s", self.config.webhook_url, exc)
            return False
        log.info("webhook verification -> %s: %s", self.config.webhook_url, ok)
        return ok

    async def _verify(self) -> None:
        while not self.verified.is_set():
            if await asyncio.to_thread(self._verify_once):
                self._count("webhook_verified")
                self.verified.set()
                return
            await asyncio.sleep(2.0)

    async def _publish(self, payload: dict[str, Any]) -> None:
        if not self.config.webhook_url:
            return
        if not self.verified.is_set():
            if self._verifying is None or self._verifying.done():
                self._verifying = asyncio.ensure_future(self._verify())
            await self.verified.wait()
        body = orjson.dumps(payload)
        headers = (
            "Content-Type: application/json\r\n"
            f"X-Hub-Signature-256: {signature(self.config.app_secret, body)}\r\n"
        ).encode()
        target = Target.parse(self.config.webhook_url)
        for attempt in range(4):
            started = time.perf_counter()
            try:
                code = await self.http.post(target, headers, body)
            except Exception as exc:
                log.info("webhook -> %s: %s", self.config.webhook_url, type(exc).__name__)
                code = 0
            else:
                log.info(
                    "webhook -> %s: HTTP %d in %.1f ms",
                    self.config.webhook_url,
                    code,
                    (time.perf_counter() - started) * 1000,
                )
            if code == 200:
                self._count("webhooks_delivered")
                return
            await asyncio.sleep(0.5 * (attempt + 1))
        self._count("webhooks_failed")
