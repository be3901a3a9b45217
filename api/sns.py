"""Amazon SNS HTTP(S) notifications, verified the way AWS documents it.

SES reports what became of each email (the configuration set's event destination) to an
SNS topic, and SNS POSTs each event to Hermes's subscription endpoint. Before anything
else a message is checked here:

1. its ``TopicArn`` is one Hermes subscribed (``HERMES_SNS_TOPIC_ARNS``): anyone can
   own an SNS topic, and a message from someone else's topic is signed by AWS too;
2. its ``SigningCertURL`` starts with an allowed prefix (``HERMES_SNS_CERT_URL_PREFIXES``;
   by default ``https://sns.`` on a host under ``.amazonaws.com``) -- never fetch a
   certificate, or a SubscribeURL, from wherever a request says;
3. that certificate came from there over HTTPS, the server's certificate verified (as
   AWS's SDKs check it); with ``HERMES_SNS_CA_FILE`` set it must also be issued by one of
   that file's CAs and be valid now (the local simulator's CA, in the tests and the local
   stack, where the certificate URL is plain HTTP);
4. the ``Signature`` (SignatureVersion 1: SHA1, 2: SHA256, RSA PKCS#1 v1.5) verifies
   over the canonical string of the message's fields.

Certificates are fetched once and kept (they change rarely). A subscription
confirmation is answered by GETting its ``SubscribeURL`` (checked like the certificate
URL). In the tests and the local stack the simulator's own CA stands in for AWS's.
"""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from api.errors import Problem

log = logging.getLogger("hermes.api.sns")

_NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_CONFIRMATION_KEYS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
_CERT_TTL_S = 3600.0


def canonical_string(message: dict[str, Any]) -> bytes:
    """The string SNS signs: name and value of each signed field, one per line, in
    byte order of the names; Subject only when the message has one."""
    keys = _NOTIFICATION_KEYS if message.get("Type") == "Notification" else _CONFIRMATION_KEYS
    lines: list[str] = []
    for key in keys:
        if key == "Subject" and message.get("Subject") is None:
            continue
        lines += [key, str(message.get(key, ""))]
    return ("\n".join(lines) + "\n").encode("utf-8")


@dataclass(frozen=True)
class SnsPolicy:
    topic_arns: frozenset[str]
    url_prefixes: tuple[str, ...]  # () = AWS's: https://sns.<region>.amazonaws.com/
    ca_file: str | None

    def url_allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        if self.url_prefixes:
            return any(url.startswith(p) for p in self.url_prefixes)
        host = parts.hostname or ""
        return (
            parts.scheme == "https" and host.startswith("sns.") and host.endswith(".amazonaws.com")
        )


class SnsVerifier:
    def __init__(self, policy: SnsPolicy, timeout: float = 5.0) -> None:
        self.policy = policy
        self.timeout = timeout
        self._certs: dict[str, tuple[float, x509.Certificate]] = {}
        self._roots: list[x509.Certificate] | None = None
        if policy.ca_file:
            with open(policy.ca_file, "rb") as f:
                self._roots = x509.load_pem_x509_certificates(f.read())

    def _issued_by_a_root(self, cert: x509.Certificate) -> bool:
        now = datetime.now(UTC)
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            return False
        for root in self._roots or ():
            try:
                cert.verify_directly_issued_by(root)
            except (ValueError, TypeError, InvalidSignature):
                continue
            return True
        return False

    async def verified(self, body: bytes) -> dict[str, Any]:
        """The message, once checked (403 invalid_signature otherwise)."""
        try:
            message = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise Problem(400, "invalid_json", "An SNS message is JSON.") from None
        if not isinstance(message, dict):
            raise Problem(400, "invalid_json", "An SNS message is a JSON object.")
        if message.get("TopicArn") not in self.policy.topic_arns:
            raise Problem(403, "invalid_signature", "Not a topic Hermes subscribed to.")
        cert_url = str(message.get("SigningCertURL") or message.get("SigningCertUrl") or "")
        if not self.policy.url_allowed(cert_url):
            raise Problem(403, "invalid_signature", "The signing certificate is not SNS's.")
        version = str(message.get("SignatureVersion", ""))
        algorithm: hashes.HashAlgorithm
        if version == "1":
            algorithm = hashes.SHA1()
        elif version == "2":
            algorithm = hashes.SHA256()
        else:
            raise Problem(403, "invalid_signature", "Unknown SignatureVersion.")
        try:
            signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
        except ValueError:
            raise Problem(403, "invalid_signature", "The signature is not base64.") from None
        cert = await self._certificate(cert_url)
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise Problem(403, "invalid_signature", "The signing certificate has no RSA key.")
        try:
            key.verify(signature, canonical_string(message), padding.PKCS1v15(), algorithm)
        except InvalidSignature:
            raise Problem(403, "invalid_signature", "The SNS signature does not match.") from None
        return message

    async def _certificate(self, url: str) -> x509.Certificate:
        now = time.monotonic()
        hit = self._certs.get(url)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
                answer = await client.get(url)
            answer.raise_for_status()
            cert = x509.load_pem_x509_certificate(answer.content)
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("SNS signing certificate %s unavailable: %s", url, type(exc).__name__)
            raise Problem(
                403, "invalid_signature", "The signing certificate cannot be read."
            ) from None
        if self._roots is not None and not self._issued_by_a_root(cert):
            raise Problem(403, "invalid_signature", "The signing certificate is not trusted.")
        if len(self._certs) > 100:
            self._certs.clear()
        self._certs[url] = (now + _CERT_TTL_S, cert)
        return cert

    async def confirm(self, message: dict[str, Any]) -> None:
        """Answers a SubscriptionConfirmation: GET its SubscribeURL (an SNS URL only)."""
        url = str(message.get("SubscribeURL", ""))
        if not self.policy.url_allowed(url):
            raise Problem(403, "invalid_signature", "The SubscribeURL is not SNS's.")
        try:
            async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
                answer = await client.get(url)
            answer.raise_for_status()
        except httpx.HTTPError as exc:
            raise Problem(
                502, "subscription_not_confirmed", f"SNS did not confirm ({type(exc).__name__})."
            ) from None
        log.info("SNS subscription to %s confirmed", message.get("TopicArn"))


def ses_receipt(message: dict[str, Any]) -> dict[str, Any] | None:
    """An SES event (the Message of an SNS Notification) as a receipt for the inbox, or
    None when it names no Hermes attempt (an email Hermes did not send)."""
    try:
        event = orjson.loads(str(message.get("Message", "")))
    except orjson.JSONDecodeError:
        raise Problem(422, "invalid_receipt", "The SES event is not JSON.") from None
    if not isinstance(event, dict):
        raise Problem(422, "invalid_receipt", "The SES event is not a JSON object.")
    kind = event.get("eventType") or event.get("notificationType")
    mail = event.get("mail") or {}
    tags = mail.get("tags") or {}
    attempt = (tags.get("hermes_attempt_id") or [None])[0]
    if not kind or not mail.get("messageId"):
        raise Problem(422, "invalid_receipt", "An SES event needs eventType and mail.messageId.")
    if attempt is None:
        return None
    error_code = error_message = None
    if kind == "Bounce":
        bounce = event.get("bounce") or {}
        kind_, sub = (
            bounce.get("bounceType", "Undetermined"),
            bounce.get("bounceSubType", "Undetermined"),
        )
        error_code = f"{kind_}:{sub}"
        recipients = bounce.get("bouncedRecipients") or [{}]
        error_message = str(recipients[0].get("diagnosticCode") or "bounced")[:300]
    elif kind == "Complaint":
        complaint = event.get("complaint") or {}
        error_code = str(complaint.get("complaintFeedbackType") or "complaint")
    elif kind in ("Reject", "RenderingFailure"):
        detail = event.get("reject") or event.get("failure") or {}
        error_code = str(detail.get("reason") or detail.get("errorMessage") or kind)[:100]
    return {
        "provider": "ses",
        "attempt_id": str(attempt),
        "provider_message_id": str(mail["messageId"]),
        "provider_status": str(kind),
        "error_code": error_code,
        "error_message": error_message,
        "payload": {"sns_message_id": message.get("MessageId"), "event": event},
    }
