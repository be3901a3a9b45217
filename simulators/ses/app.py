"""A local Amazon SES v2 simulator: ``SendEmail`` and the events SNS delivers.

``boto3`` talks to it unmodified once pointed at it (``endpoint_url``)::

    boto3.client("sesv2", endpoint_url="http://127.0.0.1:8090", region_name="us-east-1",
                 aws_access_key_id="AKIASIMULATOR0000000", aws_secret_access_key="...")

Wire format: the SES v2 REST JSON API (``POST /v2/email/outbound-emails``), its error
shape (``x-amzn-ErrorType`` header and ``{"__type", "message"}``, which botocore turns
into ``ClientError``), SigV4 ``Authorization`` headers (the access key id is checked;
the signature itself is not recomputed). Each accepted email then produces SES's events
for its configuration set -- ``Send`` at once, then ``Delivery``, ``Bounce`` or
``Delivery`` + ``Complaint`` after the receipt delay -- each delivered as an Amazon SNS
HTTP notification to the subscription endpoint, signed as SNS signs (SignatureVersion
2: SHA256withRSA over the canonical string) with a certificate the simulator issues from
its own CA (``SIM_SES_CA_DIR``: ``sns-ca.pem`` is the CA Hermes trusts in tests). As SNS
does, it first sends a ``SubscriptionConfirmation`` and sends nothing else until its
``SubscribeURL`` has been fetched. Each event carries the email's message tags, among
them ``hermes_attempt_id``.

The mailbox simulator's documented addresses behave as SES's do:
``success@simulator.amazonses.com`` delivered; ``bounce@`` a hard bounce
(Permanent/General); ``ooto@`` delivered (the auto-reply is not simulated);
``complaint@`` delivered, then a complaint (abuse); ``suppressionlist@`` a hard bounce
(Permanent/OnAccountSuppressionList). Any other address is delivered, or bounces
(Transient/General) with probability ``SIM_SES_FAILURE_RATE``.

Hermes's own fault fixtures, on the domain ``ses-fault.hermes.invalid`` (the local part
names the fault; ``-once``: only the first send to that exact address, later ones are
delivered): ``error500[-once]@`` HTTP 500 InternalFailure, nothing sent;
``throttle[-once]@`` HTTP 429 TooManyRequestsException with ``Retry-After: 2``, nothing
sent; ``timeout[-once]@`` the email is accepted (sent, its events follow) but the answer
comes 20 s later, after any caller's timeout: the outcome is unknown to the sender.

Configuration (environment)
---------------------------
``SIM_SES_ACCESS_KEY_ID``     the access key the API accepts (``AKIASIMULATOR0000000``)
``SIM_SES_SNS_ENDPOINT``      Hermes's subscription endpoint (unset: events are kept in
                              the ledger only)
``SIM_SES_TOPIC_ARN``         the topic (``arn:aws:sns:us-east-1:000000000000:hermes-ses-events``)
``SIM_SES_PUBLIC_URL``        the simulator's own base URL, for SigningCertURL and
                              SubscribeURL (``http://127.0.0.1:<port>``)
``SIM_SES_CA_DIR``            where the CA and the signing certificate are kept (a
                              temporary directory when unset)
``SIM_SES_LATENCY_MS``        delay before answering each API call (0)
``SIM_SES_RECEIPT_DELAY_MS``  delay between an email's events (200)
``SIM_SES_FAILURE_RATE``      probability of a soft bounce for other addresses (0.0)
``SIM_SES_API_ERROR_RATE``    probability that a send answers HTTP 500 (0.0)
``SIM_SES_THROTTLE_RATE``     probability that a send answers 429 TooManyRequestsException (0.0)
``SIM_SES_SEED``              seed of the random generator

Endpoints: ``POST /v2/email/outbound-emails``; ``GET /_sim/health``, ``GET
/_sim/messages`` (the ledger: every accepted email with its events), ``GET
/_sim/stats``, ``POST /_sim/reset``, ``GET /_sim/sns/cert.pem``, ``GET
/_sim/sns/ca.pem``, ``GET /_sim/sns/confirm?Token=...``.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import random
import secrets
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import orjson
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from simulators.core.base import Reply, SimBase, Tasks, env_float, env_int
from simulators.core.http_client import HttpClient, Target

log = logging.getLogger("simulators.ses")

SEND_PATH = "/v2/email/outbound-emails"
DEFAULT_ACCESS_KEY_ID = "AKIASIMULATOR0000000"
DEFAULT_TOPIC_ARN = "arn:aws:sns:us-east-1:000000000000:hermes-ses-events"
MAILBOX = "@simulator.amazonses.com"
FAULTS = "@ses-fault.hermes.invalid"


@dataclass(frozen=True)
class SesConfig:
    access_key_id: str = DEFAULT_ACCESS_KEY_ID
    sns_endpoint: str | None = None
    topic_arn: str = DEFAULT_TOPIC_ARN
    public_url: str | None = None
    ca_dir: str | None = None
    latency_ms: int = 0
    receipt_delay_ms: int = 200
    failure_rate: float = 0.0
    api_error_rate: float = 0.0
    throttle_rate: float = 0.0
    seed: int | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> SesConfig:
        e = dict(os.environ if env is None else env)
        seed = e.get("SIM_SES_SEED", "").strip()
        return cls(
            access_key_id=e.get("SIM_SES_ACCESS_KEY_ID") or DEFAULT_ACCESS_KEY_ID,
            sns_endpoint=e.get("SIM_SES_SNS_ENDPOINT") or None,
            topic_arn=e.get("SIM_SES_TOPIC_ARN") or DEFAULT_TOPIC_ARN,
            public_url=e.get("SIM_SES_PUBLIC_URL") or None,
            ca_dir=e.get("SIM_SES_CA_DIR") or None,
            latency_ms=env_int(e, "SIM_SES_LATENCY_MS", 0),
            receipt_delay_ms=env_int(e, "SIM_SES_RECEIPT_DELAY_MS", 200),
            failure_rate=env_float(e, "SIM_SES_FAILURE_RATE", 0.0),
            api_error_rate=env_float(e, "SIM_SES_API_ERROR_RATE", 0.0),
            throttle_rate=env_float(e, "SIM_SES_THROTTLE_RATE", 0.0),
            seed=int(seed) if seed else None,
        )


# ----------------------------------------------------------------- certificates


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def signing_identity(ca_dir: Path) -> tuple[rsa.RSAPrivateKey, bytes, bytes]:
    """(signing key, certificate PEM, CA PEM), made once per directory and kept there."""
    ca_dir.mkdir(parents=True, exist_ok=True)
    key_path, cert_path, ca_path = (
        ca_dir / "sns-key.pem",
        ca_dir / "sns-cert.pem",
        ca_dir / "sns-ca.pem",
    )
    if key_path.exists() and cert_path.exists() and ca_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key, cert_path.read_bytes(), ca_path.read_bytes()
    now = datetime.now(UTC) - timedelta(minutes=5)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("Hermes simulator SNS CA"))
        .issuer_name(_name("Hermes simulator SNS CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("sns.amazonaws.com"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("sns.amazonaws.com")]), critical=False
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_path.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_path.write_bytes(cert.public_bytes(pem))
    ca_path.write_bytes(ca.public_bytes(pem))
    return key, cert.public_bytes(pem), ca.public_bytes(pem)


def canonical_string(message: dict[str, Any]) -> bytes:
    """What SNS signs (the same rule as api/sns.py, written independently)."""
    if message["Type"] == "Notification":
        keys = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        keys = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    out = ""
    for k in keys:
        if k in message and message[k] is not None:
            out += f"{k}\n{message[k]}\n"
    return out.encode()


# ----------------------------------------------------------------------- state


@dataclass
class SesEmail:
    message_id: str
    from_address: str
    to: list[str]
    subject: str
    tags: dict[str, list[str]]
    configuration_set: str | None
    created_at: str
    outcome: str  # delivered | bounce | complaint | suppressed | soft_bounce
    events: list[str] = field(default_factory=list)

    def ledger_entry(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "from": self.from_address,
            "to": self.to,
            "subject": self.subject,
            "tags": self.tags,
            "configuration_set": self.configuration_set,
            "created_at": self.created_at,
            "outcome": self.outcome,
            "events": self.events,
        }


def _error(status: int, code: str, message: str, note: str | None = None) -> Reply:
    body = orjson.dumps({"__type": code, "message": message})
    return Reply(status, body, note or code, headers=(("x-amzn-ErrorType", code),))


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


class SesSimulator(SimBase):
    """The SES simulator's memory and request handling (a core ``Handler``)."""

    name = "SES"
    logger = log

    def __init__(self, config: SesConfig, port: int) -> None:
        self.config = config
        self.public_url = (config.public_url or f"http://127.0.0.1:{port}").rstrip("/")
        ca_dir = Path(config.ca_dir) if config.ca_dir else Path(tempfile.mkdtemp(prefix="ses-sim-"))
        self.ca_dir = ca_dir
        self._key, self.cert_pem, self.ca_pem = signing_identity(ca_dir)
        self.rng = random.Random(config.seed)
        self.emails: list[SesEmail] = []
        self.accepted = 0
        self.resets = 0
        self.stats: dict[str, int] = {}
        self.tasks = Tasks()
        self.http = HttpClient(timeout=15.0, max_connections=32)
        self.latency_s = config.latency_ms / 1000
        self.confirmed = asyncio.Event()
        self.token = secrets.token_hex(32)
        self._confirming: asyncio.Task[None] | None = None
        self._faulted: set[str] = set()

    # ----------------------------------------------------------------- Handler

    def latency_for(self, path: str) -> float:
        return self.latency_s if path == SEND_PATH else 0.0

    def error_reply(self, status: int, message: str) -> Reply:
        return _error(
            status, "InternalFailure" if status >= 500 else "BadRequestException", message
        )

    def log_ready(self, where: str) -> None:
        log.info(
            "SES simulator ready on %s: SNS endpoint %s, topic %s, CA %s",
            where,
            self.config.sns_endpoint,
            self.config.topic_arn,
            self.ca_dir / "sns-ca.pem",
        )

    async def close(self) -> int:
        n = await self.tasks.close()
        self.http.close()
        return n

    def handle(
        self,
        method: str,
        path: str,
        query: str,
        authorization: str | None,
        content_type: str | None,  # noqa: ARG002
        body: bytes,
    ) -> Reply:
        if path == SEND_PATH:
            if method != "POST":
                return _error(405, "MethodNotAllowed", "POST only")
            return self.send_email(authorization, body)
        if method in ("GET", "HEAD"):
            if path == "/_sim/sns/cert.pem":
                return Reply(200, self.cert_pem, content_type="application/x-pem-file")
            if path == "/_sim/sns/ca.pem":
                return Reply(200, self.ca_pem, content_type="application/x-pem-file")
            if path == "/_sim/sns/confirm":
                token = (parse_qs(query).get("Token") or [""])[0]
                if token != self.token:
                    return _error(403, "AuthorizationError", "Invalid token")
                self.confirmed.set()
                self._count("subscriptions_confirmed")
                return Reply(200, b"<ConfirmSubscriptionResponse/>", content_type="text/xml")
        return self.sim_route(method, path) or _error(404, "NotFoundException", f"No route {path}")

    def ledger(self) -> list[Any]:
        return [e.ledger_entry() for e in self.emails]

    def stats_extra(self) -> dict[str, Any]:
        return {"confirmed": self.confirmed.is_set()}

    def forget(self) -> int:
        n = len(self.emails)
        self.tasks.cancel()
        self.emails.clear()
        return n

    # ------------------------------------------------------------------ the API

    def send_email(self, authorization: str | None, body: bytes) -> Reply:
        scheme, _, params = (authorization or "").partition(" ")
        if scheme != "AWS4-HMAC-SHA256" or f"Credential={self.config.access_key_id}/" not in params:
            self._count("unauthorized")
            return _error(
                403,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        try:
            request = orjson.loads(body)
            assert isinstance(request, dict)
        except (orjson.JSONDecodeError, AssertionError):
            return _error(400, "BadRequestException", "The request body is not a JSON object.")
        sender = request.get("FromEmailAddress")
        to = ((request.get("Destination") or {}).get("ToAddresses")) or []
        simple = (request.get("Content") or {}).get("Simple") or {}
        subject = ((simple.get("Subject") or {}).get("Data")) or ""
        if not sender or "@" not in str(sender):
            return _error(400, "BadRequestException", "FromEmailAddress is required.")
        if not isinstance(to, list) or not 1 <= len(to) <= 50 or not all("@" in str(a) for a in to):
            return _error(
                400, "BadRequestException", "Destination.ToAddresses takes 1 to 50 addresses."
            )
        if not subject or not (simple.get("Body") or {}):
            return _error(400, "BadRequestException", "Content.Simple needs a Subject and a Body.")
        first = str(to[0]).lower()
        fault = None
        if first.endswith(FAULTS):
            name = first.split("@")[0]
            once = name.endswith("-once")
            if not once or first not in self._faulted:
                fault = name.removesuffix("-once")
                self._faulted.add(first)
        if fault == "error500":
            self._count("api_errors")
            return _error(500, "InternalFailure", "The request processing has failed (fixture).")
        if fault == "throttle":
            self._count("throttled")
            reply = _error(
                429, "TooManyRequestsException", "Maximum sending rate exceeded (fixture)."
            )
            reply.headers += (("Retry-After", "2"),)
            return reply
        roll = self.rng.random()
        if roll < self.config.throttle_rate:
            self._count("throttled")
            return _error(429, "TooManyRequestsException", "Maximum sending rate exceeded.")
        if roll < self.config.throttle_rate + self.config.api_error_rate:
            self._count("api_errors")
            return _error(
                500,
                "InternalFailure",
                "The request processing has failed because of an unknown error.",
            )
        if first.endswith(MAILBOX):
            outcome = {
                "bounce": "bounce",
                "complaint": "complaint",
                "suppressionlist": "suppressed",
            }.get(first.split("@")[0], "delivered")
        else:
            outcome = "soft_bounce" if self.rng.random() < self.config.failure_rate else "delivered"
        tags: dict[str, list[str]] = {}
        for tag in request.get("EmailTags") or []:
            tags.setdefault(str(tag.get("Name")), []).append(str(tag.get("Value")))
        email = SesEmail(
            message_id=f"0100{secrets.token_hex(6)}-{uuid.uuid4()}-000000",
            from_address=str(sender),
            to=[str(a) for a in to],
            subject=str(subject),
            tags=tags,
            configuration_set=request.get("ConfigurationSetName"),
            created_at=_iso(datetime.now(UTC)),
            outcome=outcome,
        )
        self.emails.append(email)
        self.accepted += 1
        self._count("sent")
        self.tasks.spawn(self._events(email), f"ses-events-{email.message_id}")
        return Reply(
            200,
            orjson.dumps({"MessageId": email.message_id}),
            note=f"{first} -> {outcome}",
            delay_s=20.0 if fault == "timeout" else 0.0,
        )

    # ---------------------------------------------------------------- events

    def _event(self, email: SesEmail, kind: str) -> dict[str, Any]:
        now = _iso(datetime.now(UTC))
        event: dict[str, Any] = {
            "eventType": kind,
            "mail": {
                "timestamp": email.created_at,
                "source": email.from_address,
                "sendingAccountId": "000000000000",
                "messageId": email.message_id,
                "destination": email.to,
                "headersTruncated": False,
                "commonHeaders": {
                    "from": [email.from_address],
                    "to": email.to,
                    "subject": email.subject,
                },
                "tags": email.tags | {"ses:configuration-set": [email.configuration_set or ""]},
            },
        }
        recipient = email.to[0]
        if kind == "Delivery":
            event["delivery"] = {
                "timestamp": now,
                "processingTimeMillis": 500,
                "recipients": email.to,
                "smtpResponse": "250 2.6.0 Message received",
                "reportingMTA": "a1-1.smtp-out.amazonses.com",
            }
        elif kind == "Bounce":
            sub = {"bounce": "General", "suppressed": "OnAccountSuppressionList"}.get(
                email.outcome, "General"
            )
            event["bounce"] = {
                "bounceType": "Transient" if email.outcome == "soft_bounce" else "Permanent",
                "bounceSubType": sub,
                "timestamp": now,
                "feedbackId": str(uuid.uuid4()),
                "bouncedRecipients": [
                    {
                        "emailAddress": recipient,
                        "action": "failed",
                        "status": "5.1.1",
                        "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                    }
                ],
            }
        elif kind == "Complaint":
            event["complaint"] = {
                "complainedRecipients": [{"emailAddress": recipient}],
                "timestamp": now,
                "feedbackId": str(uuid.uuid4()),
                "complaintFeedbackType": "abuse",
            }
        elif kind == "Send":
            event["send"] = {}
        return event

    async def _events(self, email: SesEmail) -> None:
        plan = ["Send"] + {
            "delivered": ["Delivery"],
            "bounce": ["Bounce"],
            "suppressed": ["Bounce"],
            "soft_bounce": ["Bounce"],
            "complaint": ["Delivery", "Complaint"],
        }[email.outcome]
        for i, kind in enumerate(plan):
            if i:
                await asyncio.sleep(self.config.receipt_delay_ms / 1000)
            email.events.append(kind)
            await self._publish(self._event(email, kind))

    def _signed(self, message: dict[str, Any]) -> dict[str, Any]:
        message["SignatureVersion"] = "2"
        message["SigningCertURL"] = f"{self.public_url}/_sim/sns/cert.pem"
        signature = self._key.sign(canonical_string(message), padding.PKCS1v15(), hashes.SHA256())
        message["Signature"] = base64.b64encode(signature).decode()
        return message

    async def _confirm(self) -> None:
        """SNS's handshake: a SubscriptionConfirmation, until its SubscribeURL is fetched."""
        while not self.confirmed.is_set():
            arn = self.config.topic_arn
            message = self._signed(
                {
                    "Type": "SubscriptionConfirmation",
                    "MessageId": str(uuid.uuid4()),
                    "Token": self.token,
                    "TopicArn": arn,
                    "Message": f"You have chosen to subscribe to the topic {arn}.\n"
                    "To confirm the subscription, "
                    "visit the SubscribeURL included in this message.",
                    "SubscribeURL": f"{self.public_url}/_sim/sns/confirm?Action=ConfirmSubscription"
                    f"&TopicArn={quote(arn)}&Token={self.token}",
                    "Timestamp": _iso(datetime.now(UTC)),
                }
            )
            await self._post(message, "SubscriptionConfirmation")
            try:
                await asyncio.wait_for(self.confirmed.wait(), timeout=5.0)
            except TimeoutError:
                continue

    async def _publish(self, event: dict[str, Any]) -> None:
        if not self.config.sns_endpoint:
            return
        if not self.confirmed.is_set():
            if self._confirming is None or self._confirming.done():
                self._confirming = asyncio.ensure_future(self._confirm())
            await self.confirmed.wait()
        message = self._signed(
            {
                "Type": "Notification",
                "MessageId": str(uuid.uuid4()),
                "TopicArn": self.config.topic_arn,
                "Message": orjson.dumps(event).decode(),
                "Timestamp": _iso(datetime.now(UTC)),
                "UnsubscribeURL": f"{self.public_url}/_sim/sns/unsubscribe",
            }
        )
        for attempt in range(4):  # SNS retries an HTTP endpoint; three times here
            if await self._post(message, "Notification"):
                self._count("notifications_delivered")
                return
            await asyncio.sleep(0.5 * (attempt + 1))
        self._count("notifications_failed")

    async def _post(self, message: dict[str, Any], kind: str) -> bool:
        assert self.config.sns_endpoint
        target = Target.parse(self.config.sns_endpoint)
        headers = (
            f"Content-Type: text/plain; charset=UTF-8\r\nx-amz-sns-message-type: {kind}\r\n"
            f"x-amz-sns-message-id: {message['MessageId']}\r\n"
            f"x-amz-sns-topic-arn: {message['TopicArn']}\r\n"
        ).encode()
        started = time.perf_counter()
        try:
            code = await self.http.post(target, headers, orjson.dumps(message))
        except Exception as exc:
            log.info("SNS %s -> %s: %s", kind, self.config.sns_endpoint, type(exc).__name__)
            return False
        log.info(
            "SNS %s -> %s: HTTP %d in %.1f ms",
            kind,
            self.config.sns_endpoint,
            code,
            (time.perf_counter() - started) * 1000,
        )
        return 200 <= code < 300
