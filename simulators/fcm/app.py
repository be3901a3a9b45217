"""A local Firebase Cloud Messaging (HTTP v1) simulator, with Google's OAuth 2.0 token
endpoint for service accounts.

What a client does against the real service, it does here, pointed at this base URL:

1. ``POST /token`` -- the OAuth 2.0 JWT-bearer grant (RFC 7523) that google-auth's
   service-account credentials make: ``grant_type=urn:ietf:params:oauth:grant-type:
   jwt-bearer&assertion=<JWT>``, the JWT signed RS256 by the service account's private
   key, ``iss`` the account's ``client_email``, ``aud`` Google's token URI (what
   google-auth signs for) or this one, ``scope`` with
   ``https://www.googleapis.com/auth/firebase.messaging``, ``exp`` at most an hour
   after ``iat``. The signature is verified with the account's public key; the answer is
   ``{"access_token", "expires_in": 3600, "token_type": "Bearer"}``, errors as Google
   answers them (``{"error": "invalid_grant", "error_description": ...}``).
2. ``POST /v1/projects/{project}/messages:send`` with ``Authorization: Bearer <access
   token>`` and ``{"message": {"token", "notification": {"title", "body"}, "data"}}``:
   ``200 {"name": "projects/{project}/messages/<id>"}``; errors in Google's shape,
   ``{"error": {"code", "message", "status", "details": [{"@type":
   "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": ...}]}}``.

The service account is the simulator's: at start it writes ``service-account.json``
(the file a Firebase project's console hands out: ``type``, ``project_id``,
``private_key_id``, ``private_key``, ``client_email``, ``token_uri`` -- this
simulator's) into ``SIM_FCM_CREDENTIALS_DIR``, or reuses the one there.

FCM sends no delivery receipts: an accepted message is the end of what Hermes can know.

Registration-token fixtures (Hermes's own: FCM documents none), by prefix of the token;
``-once``: only the first send to that exact token, later ones are accepted:
``unregistered-...`` 404 UNREGISTERED (the app was uninstalled: the token is dead);
``invalid-...`` 400 INVALID_ARGUMENT; ``mismatch-...`` 403 SENDER_ID_MISMATCH;
``quota[-once]-...`` 429 QUOTA_EXCEEDED with ``Retry-After: 2``; ``unavailable[-once]-...``
503 UNAVAILABLE; ``internal[-once]-...`` 500 INTERNAL; ``timeout[-once]-...`` accepted,
but answered 20 s later (after any caller's timeout: the outcome is unknown to it). Any
other token is accepted.

Configuration (environment)
---------------------------
``SIM_FCM_PROJECT_ID``        the project (``hermes-sim``)
``SIM_FCM_CREDENTIALS_DIR``   where ``service-account.json`` is kept (a temporary
                              directory when unset)
``SIM_FCM_PUBLIC_URL``        the simulator's own base URL, for ``token_uri``
                              (``http://127.0.0.1:<port>``)
``SIM_FCM_LATENCY_MS``        delay before answering each send (0)
``SIM_FCM_UNAVAILABLE_RATE``  probability that a send answers 503 UNAVAILABLE (0.0)
``SIM_FCM_SEED``              seed of the random generator

Endpoints: ``POST /token``, ``POST /v1/projects/{project}/messages:send``; ``GET
/_sim/health``, ``GET /_sim/messages`` (the ledger), ``GET /_sim/stats``, ``POST
/_sim/reset``.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import random
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from simulators.core.base import Reply, SimBase, env_float, env_int

log = logging.getLogger("simulators.fcm")

DEFAULT_PROJECT = "hermes-sim"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
TOKEN_PATH = "/token"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
ACCESS_TOKEN_SECONDS = 3600

# prefix -> (HTTP status, google.rpc status, FCM error code)
FAULTS: dict[str, tuple[int, str, str]] = {
    "unregistered": (404, "NOT_FOUND", "UNREGISTERED"),
    "invalid": (400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"),
    "mismatch": (403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH"),
    "quota": (429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"),
    "unavailable": (503, "UNAVAILABLE", "UNAVAILABLE"),
    "internal": (500, "INTERNAL", "INTERNAL"),
}


@dataclass(frozen=True)
class FcmConfig:
    project_id: str = DEFAULT_PROJECT
    credentials_dir: str | None = None
    public_url: str | None = None
    latency_ms: int = 0
    unavailable_rate: float = 0.0
    seed: int | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> FcmConfig:
        e = dict(os.environ if env is None else env)
        seed = e.get("SIM_FCM_SEED", "").strip()
        return cls(
            project_id=e.get("SIM_FCM_PROJECT_ID") or DEFAULT_PROJECT,
            credentials_dir=e.get("SIM_FCM_CREDENTIALS_DIR") or None,
            public_url=e.get("SIM_FCM_PUBLIC_URL") or None,
            latency_ms=env_int(e, "SIM_FCM_LATENCY_MS", 0),
            unavailable_rate=env_float(e, "SIM_FCM_UNAVAILABLE_RATE", 0.0),
            seed=int(seed) if seed else None,
        )


def service_account(directory: Path, project_id: str, token_uri: str) -> dict[str, str]:
    """The project's service-account key file, made once per directory and kept there
    (its token_uri follows this simulator's address)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "service-account.json"
    if path.exists():
        info: dict[str, str] = orjson.loads(path.read_bytes())
        if info.get("project_id") == project_id:
            if info.get("token_uri") != token_uri:
                info["token_uri"] = token_uri
                path.write_bytes(orjson.dumps(info, option=orjson.OPT_INDENT_2))
            return info
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": f"firebase-adminsdk@{project_id}.iam.gserviceaccount.com",
        "client_id": str(random.randrange(10**20, 10**21)),
        "token_uri": token_uri,
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(info, option=orjson.OPT_INDENT_2))
    tmp.chmod(0o600)
    tmp.replace(path)
    return info


def _b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _google_error(status: int, rpc: str, message: str, fcm_code: str | None = None) -> Reply:
    error: dict[str, Any] = {"code": status, "message": message, "status": rpc}
    if fcm_code:
        error["details"] = [{"@type": FCM_ERROR_TYPE, "errorCode": fcm_code}]
    return Reply(status, orjson.dumps({"error": error}), note=fcm_code or rpc)


def _oauth_error(error: str, description: str) -> Reply:
    body = orjson.dumps({"error": error, "error_description": description})
    return Reply(400, body, note=error)


class FcmSimulator(SimBase):
    """The FCM simulator's memory and request handling (a core ``Handler``)."""

    name = "FCM"
    logger = log

    def __init__(self, config: FcmConfig, port: int) -> None:
        self.config = config
        self.public_url = (config.public_url or f"http://127.0.0.1:{port}").rstrip("/")
        directory = (
            Path(config.credentials_dir)
            if config.credentials_dir
            else Path(tempfile.mkdtemp(prefix="fcm-sim-"))
        )
        self.credentials_file = directory / "service-account.json"
        self.account = service_account(directory, config.project_id, self.public_url + TOKEN_PATH)
        key = serialization.load_pem_private_key(self.account["private_key"].encode(), None)
        assert isinstance(key, rsa.RSAPrivateKey)
        self._public_key = key.public_key()
        self.send_path = f"/v1/projects/{config.project_id}/messages:send"
        self.rng = random.Random(config.seed)
        self.tokens: dict[str, float] = {}  # access token -> expiry (monotonic)
        self.messages: list[dict[str, Any]] = []
        self.accepted = 0
        self.resets = 0
        self.stats: dict[str, int] = {}
        self._faulted: set[str] = set()

    # ----------------------------------------------------------------- Handler

    def latency_for(self, path: str) -> float:
        return self.config.latency_ms / 1000 if path.endswith(":send") else 0.0

    def error_reply(self, status: int, message: str) -> Reply:
        return _google_error(status, "INTERNAL" if status >= 500 else "INVALID_ARGUMENT", message)

    def log_ready(self, where: str) -> None:
        log.info(
            "FCM simulator ready on %s: project %s, service account %s",
            where,
            self.config.project_id,
            self.credentials_file,
        )

    async def close(self) -> int:
        return 0

    def handle(
        self,
        method: str,
        path: str,
        query: str,  # noqa: ARG002
        authorization: str | None,
        content_type: str | None,  # noqa: ARG002
        body: bytes,
    ) -> Reply:
        if method == "POST" and path == TOKEN_PATH:
            return self.token(body)
        if path.startswith("/v1/projects/") and path.endswith("/messages:send"):
            if method != "POST":
                return _google_error(405, "INVALID_ARGUMENT", "POST only")
            return self.send(path, authorization, body)
        return self.sim_route(method, path) or _google_error(404, "NOT_FOUND", f"No route {path}")

    def ledger(self) -> list[Any]:
        return self.messages

    def forget(self) -> int:
        n = len(self.messages)
        self.messages.clear()
        self._faulted.clear()
        return n

    # ---------------------------------------------------------- OAuth 2.0 token

    def token(self, body: bytes) -> Reply:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != JWT_BEARER:
            return _oauth_error("unsupported_grant_type", "Invalid grant_type.")
        try:
            head64, claims64, sig64 = form.get("assertion", "").split(".")
            header = orjson.loads(_b64url(head64))
            claims = orjson.loads(_b64url(claims64))
            signature = _b64url(sig64)
        except (ValueError, binascii.Error, orjson.JSONDecodeError):
            self._count("token_refused")
            return _oauth_error("invalid_grant", "Invalid JWT: the assertion is not a JWT.")
        if header.get("alg") != "RS256" or header.get("kid") != self.account["private_key_id"]:
            self._count("token_refused")
            return _oauth_error("invalid_grant", "Invalid JWT Signature.")
        try:
            self._public_key.verify(
                signature,
                f"{head64}.{claims64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            self._count("token_refused")
            return _oauth_error("invalid_grant", "Invalid JWT Signature.")
        now = time.time()
        # google-auth signs for Google's token endpoint whatever the token_uri (as
        # Google's own endpoint expects); this one's address is accepted as well.
        if claims.get("iss") != self.account["client_email"] or claims.get("aud") not in (
            GOOGLE_TOKEN_URI,
            self.account["token_uri"],
        ):
            self._count("token_refused")
            return _oauth_error("invalid_grant", "Invalid JWT: iss or aud is wrong.")
        if not (
            isinstance(claims.get("iat"), int | float)
            and isinstance(claims.get("exp"), int | float)
            and claims["iat"] - 300 <= now <= claims["exp"] + 300
            and claims["exp"] - claims["iat"] <= 3600
        ):
            self._count("token_refused")
            return _oauth_error("invalid_grant", "Invalid JWT: Token must be a short-lived token.")
        if SCOPE not in str(claims.get("scope", "")).split():
            self._count("token_refused")
            return _oauth_error("invalid_scope", f"The scope {SCOPE} is required.")
        access = "ya29.sim-" + secrets.token_urlsafe(32)
        self.tokens[access] = time.monotonic() + ACCESS_TOKEN_SECONDS
        self._count("tokens_issued")
        return Reply(
            200,
            orjson.dumps(
                {"access_token": access, "expires_in": ACCESS_TOKEN_SECONDS, "token_type": "Bearer"}
            ),
        )

    # --------------------------------------------------------------- messages

    def send(self, path: str, authorization: str | None, body: bytes) -> Reply:
        scheme, _, access = (authorization or "").partition(" ")
        expiry = self.tokens.get(access) if scheme == "Bearer" else None
        if expiry is None or expiry < time.monotonic():
            self._count("unauthenticated")
            return _google_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token.",
            )
        if path != self.send_path:
            self._count("permission_denied")
            return _google_error(
                403, "PERMISSION_DENIED", "The caller does not have permission (another project)."
            )
        try:
            request = orjson.loads(body)
            message = request["message"]
            assert isinstance(message, dict)
        except (orjson.JSONDecodeError, KeyError, TypeError, AssertionError):
            return _google_error(
                400, "INVALID_ARGUMENT", "Invalid JSON payload received.", "INVALID_ARGUMENT"
            )
        targets = [k for k in ("token", "topic", "condition") if k in message]
        if len(targets) != 1:
            return _google_error(
                400,
                "INVALID_ARGUMENT",
                "Exactly one of token, topic or condition must be given.",
                "INVALID_ARGUMENT",
            )
        data = message.get("data")
        if data is not None and (
            not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values())
        ):
            return _google_error(
                400,
                "INVALID_ARGUMENT",
                "Invalid value at 'message.data': the values must be strings.",
                "INVALID_ARGUMENT",
            )
        if len(body) > 4096 + 1024:
            return _google_error(400, "INVALID_ARGUMENT", "Message is too big.", "INVALID_ARGUMENT")
        token = str(message.get("token", ""))
        fault = None
        prefix = token.split("-", 1)[0]
        once = token.startswith(prefix + "-once-")
        if (prefix in FAULTS or prefix == "timeout") and (not once or token not in self._faulted):
            fault = prefix
            self._faulted.add(token)
        if fault in FAULTS:
            status, rpc, code = FAULTS[fault]
            self._count(code.lower())
            reply = _google_error(status, rpc, f"{code} (fixture)", code)
            if status == 429:
                reply.headers += (("Retry-After", "2"),)
            return reply
        if self.rng.random() < self.config.unavailable_rate:
            self._count("unavailable")
            return _google_error(503, "UNAVAILABLE", "The service is unavailable.", "UNAVAILABLE")
        name = (
            f"projects/{self.config.project_id}/messages/0:{time.time_ns()}%{secrets.token_hex(8)}"
        )
        self.messages.append(
            {
                "name": name,
                "token": token,
                "notification": message.get("notification"),
                "data": data,
                "accepted_at": time.time(),
            }
        )
        self.accepted += 1
        self._count("accepted")
        return Reply(
            200,
            orjson.dumps({"name": name}),
            note=f"{token[:24]} -> accepted",
            delay_s=20.0 if fault == "timeout" else 0.0,
        )
