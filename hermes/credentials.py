"""Provider credentials at rest: sealed with AES-256-GCM before they reach the database.

The database holds only ciphertext (``app.provider_accounts.credentials``) and the id of
the key that sealed it; the keys are the deployment's (``HERMES_CREDENTIALS_KEYS``:
``id:base64-of-32-bytes,...``, the first seals, every one opens -- rotation is adding a
key in front and re-sealing at leisure). The associated data binds a ciphertext to its
account (id and provider), so a sealed blob copied to another row does not open. The command
API seals (it takes the credentials once, and never answers them back); the workers
open, to send. The API opens only an account's webhook-verification secret, sealed
apart (``purpose="webhook"``, :data:`WEBHOOK_FIELDS`), to check the signatures of its
callbacks and inbound messages; the database role it runs as cannot read the sealed
credentials at all. Plain credentials are never logged, put in a job payload,
an error or an API response.

What a provider's credentials hold is checked here, not in SQL: SQL never sees them.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import load_pem_private_key

NONCE_BYTES = 12
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")

# provider -> (required string fields, optional fields)
SHAPES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "twilio": (("account_sid", "auth_token"), ()),
    "vonage": (("api_key", "api_secret"), ("signature_secret",)),
    "ses": (("access_key_id", "secret_access_key"), ("region", "configuration_set")),
    "fcm": (("service_account",), ()),
    "whatsapp": (("access_token", "phone_numbers"), ("app_secret",)),
}

# What verifies a provider's webhooks (status callbacks, inbound messages) for an
# account: sealed apart from the credentials (``purpose="webhook"``), so that the
# internet-facing API, which checks signatures, opens only this and never the
# credentials that send (app.provider_account_webhook_secrets). Twilio signs with the
# auth token (which also sends: it is in both); Vonage with the signature secret, for
# its api key; WhatsApp with the Meta app's secret. SES (SNS) and FCM sign nothing per
# account: an empty secret.
WEBHOOK_FIELDS: dict[str, tuple[str, ...]] = {
    "twilio": ("auth_token",),
    "vonage": ("api_key", "signature_secret"),
    "whatsapp": ("app_secret",),
    "ses": (),
    "fcm": (),
}


def webhook_part(provider: str, credentials: Mapping[str, Any]) -> dict[str, Any]:
    """The webhook-verification secret of an account's credentials."""
    return {k: credentials[k] for k in WEBHOOK_FIELDS.get(provider, ()) if credentials.get(k)}


# Google's OAuth 2.0 token endpoint: where an FCM service account's signed JWT grant is
# exchanged for an access token. A key file's token_uri must be this one (or the
# deployment's configured FCM token endpoint, FCM_TOKEN_URI: the simulator's in tests):
# the worker POSTs there, so a tenant choosing it would choose where Hermes connects.
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
# The fields of a Google service-account key file (what the Firebase console hands
# out); any other is refused.
FCM_KEY_REQUIRED = ("project_id", "private_key", "client_email")
FCM_KEY_FIELDS = frozenset(
    {
        *FCM_KEY_REQUIRED,
        "type",
        "private_key_id",
        "client_id",
        "auth_uri",
        "token_uri",
        "auth_provider_x509_cert_url",
        "client_x509_cert_url",
        "universe_domain",
    }
)


def fcm_token_uris(configured: str | None) -> frozenset[str]:
    """The token endpoints an FCM key file may name: Google's, and the deployment's."""
    return frozenset({GOOGLE_TOKEN_URI} | ({configured} if configured else set()))


class CredentialsError(ValueError):
    """Credentials that do not fit their provider (the message names no secret)."""


def check_fcm_key(key: Mapping[str, Any], token_uris: frozenset[str]) -> dict[str, Any]:
    """An FCM service-account key file if it is one: Google's fields only, each a
    string, the private key a PEM RSA key, ``token_uri`` one of ``token_uris`` (absent:
    Google's), ``universe_domain`` googleapis.com. CredentialsError otherwise."""
    allowed = token_uris | {GOOGLE_TOKEN_URI}
    unknown = sorted(set(key) - FCM_KEY_FIELDS)
    if unknown:
        raise CredentialsError(f"unknown service_account field(s): {', '.join(unknown)[:200]}")
    if not all(key.get(k) for k in FCM_KEY_REQUIRED):
        raise CredentialsError(
            "service_account is the key file's JSON (project_id, private_key, client_email)"
        )
    for k, v in key.items():
        if not isinstance(v, str) or len(v) > 8192:
            raise CredentialsError(f"service_account {k} is a string of up to 8192 characters")
    if key.get("type", "service_account") != "service_account":
        raise CredentialsError("service_account type is service_account")
    if key.get("token_uri", GOOGLE_TOKEN_URI) not in allowed:
        raise CredentialsError(f"service_account token_uri must be {GOOGLE_TOKEN_URI}")
    if key.get("universe_domain", "googleapis.com") != "googleapis.com":
        raise CredentialsError("service_account universe_domain must be googleapis.com")
    try:
        private = load_pem_private_key(str(key["private_key"]).encode(), password=None)
    except (ValueError, TypeError):
        raise CredentialsError("service_account private_key is not a PEM private key") from None
    if not isinstance(private, rsa.RSAPrivateKey):
        raise CredentialsError("service_account private_key is not an RSA key")
    return dict(key) | {"token_uri": key.get("token_uri", GOOGLE_TOKEN_URI)}


def check_shape(
    provider: str, credentials: Mapping[str, Any], fcm_token_uris: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The credentials if they fit the provider's shape; CredentialsError otherwise.

    This is the one place a tenant's credentials are validated: SQL never sees them in
    the clear (the API seals them before app.set_provider_account stores them), so
    their fields cannot be checked there. ``fcm_token_uris``: the deployment's
    configured FCM token endpoints besides Google's."""
    if provider not in SHAPES:
        raise CredentialsError(f"unknown provider {provider!r}")
    required, optional = SHAPES[provider]
    unknown = sorted(set(credentials) - set(required) - set(optional))
    if unknown:
        raise CredentialsError(f"unknown field(s) for {provider}: {', '.join(unknown)}")
    missing = [k for k in required if not credentials.get(k)]
    if missing:
        raise CredentialsError(f"{provider} credentials need {', '.join(missing)}")
    out = dict(credentials)
    for key, value in credentials.items():
        if key == "service_account":
            if not isinstance(value, Mapping):
                raise CredentialsError(
                    "service_account is the key file's JSON (project_id, private_key, client_email)"
                )
            out["service_account"] = check_fcm_key(value, fcm_token_uris)
        elif key == "phone_numbers":
            if not isinstance(value, Mapping) or not all(
                isinstance(n, str) and n.startswith("+") and isinstance(i, str) and i.isdigit()
                for n, i in value.items()
            ):
                raise CredentialsError('phone_numbers maps "+E164" numbers to phone-number ids')
        elif not isinstance(value, str) or not 1 <= len(value) <= 4096:
            raise CredentialsError(f"{key} is a string of 1 to 4096 characters")
    return out


class Sealer:
    def __init__(self, keys: Mapping[str, bytes], current: str) -> None:
        if current not in keys:
            raise ValueError("the current key is not among the keys")
        for key_id, key in keys.items():
            if not _KEY_ID.match(key_id) or len(key) != 32:
                raise ValueError(f"credentials key {key_id!r}: an id and 32 bytes")
        self._keys = {k: AESGCM(v) for k, v in keys.items()}
        self.current = current

    @classmethod
    def from_spec(cls, spec: str) -> Sealer | None:
        """``id:base64,...`` (the first seals); None when empty."""
        keys: dict[str, bytes] = {}
        first = None
        for item in filter(None, (s.strip() for s in spec.split(","))):
            key_id, _, encoded = item.partition(":")
            try:
                keys[key_id] = base64.b64decode(encoded, validate=True)
            except binascii.Error:
                raise ValueError(f"HERMES_CREDENTIALS_KEYS: key {key_id!r} is not base64") from None
            first = first or key_id
        return cls(keys, first) if first else None

    @classmethod
    def from_env(cls) -> Sealer | None:
        return cls.from_spec(os.environ.get("HERMES_CREDENTIALS_KEYS", ""))

    @staticmethod
    def _aad(account_id: str, provider: str, purpose: str = "credentials") -> bytes:
        # A webhook secret's associated data differs from the credentials': neither
        # blob opens as the other.
        if purpose == "webhook":
            return f"hermes-provider-account-webhook:{account_id}:{provider}".encode()
        if purpose != "credentials":
            raise ValueError(f"unknown purpose {purpose!r}")
        return f"hermes-provider-account:{account_id}:{provider}".encode()

    def seal(
        self,
        account_id: str,
        provider: str,
        credentials: Mapping[str, Any],
        purpose: str = "credentials",
    ) -> tuple[str, bytes]:
        nonce = os.urandom(NONCE_BYTES)
        plain = json.dumps(credentials, separators=(",", ":")).encode()
        sealed = self._keys[self.current].encrypt(
            nonce, plain, self._aad(account_id, provider, purpose)
        )
        return self.current, nonce + sealed

    def open(
        self,
        account_id: str,
        provider: str,
        key_id: str,
        blob: bytes,
        purpose: str = "credentials",
    ) -> dict[str, Any]:
        aead = self._keys.get(key_id)
        if aead is None:
            raise CredentialsError(
                f"credentials sealed with key {key_id!r}, which is not configured"
            )
        try:
            plain = aead.decrypt(
                blob[:NONCE_BYTES], blob[NONCE_BYTES:], self._aad(account_id, provider, purpose)
            )
        except InvalidTag:
            raise CredentialsError(
                "credentials do not open (wrong key, or not this account's)"
            ) from None
        opened: dict[str, Any] = json.loads(plain)
        return opened


def new_key_spec(key_id: str = "k1") -> str:
    """A fresh ``HERMES_CREDENTIALS_KEYS`` value (32 random bytes)."""
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"
