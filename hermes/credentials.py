"""Provider credentials at rest: sealed with AES-256-GCM before they reach the database.

The database holds only ciphertext (``app.provider_accounts.credentials``) and the id of
the key that sealed it; the keys are the deployment's (``HERMES_CREDENTIALS_KEYS``:
``id:base64-of-32-bytes,...``, the first seals, every one opens -- rotation is adding a
key in front and re-sealing at leisure). The associated data binds a ciphertext to its
account (id and provider), so a sealed blob copied to another row does not open. The command
API seals (it takes the credentials once, and never answers them back); the workers
open, to send; the API opens a tenant's Twilio or Vonage account to check the
signatures of its callbacks. Plain credentials are never logged, put in a job payload,
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
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")

# provider -> (required string fields, optional fields)
SHAPES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "twilio": (("account_sid", "auth_token"), ()),
    "vonage": (("api_key", "api_secret"), ("signature_secret",)),
    "ses": (("access_key_id", "secret_access_key"), ("region", "configuration_set")),
    "fcm": (("service_account",), ()),
    "whatsapp": (("access_token", "phone_numbers"), ()),
}


class CredentialsError(ValueError):
    """Credentials that do not fit their provider (the message names no secret)."""


def check_shape(provider: str, credentials: Mapping[str, Any]) -> dict[str, Any]:
    """The credentials if they fit the provider's shape; CredentialsError otherwise."""
    if provider not in SHAPES:
        raise CredentialsError(f"unknown provider {provider!r}")
    required, optional = SHAPES[provider]
    unknown = sorted(set(credentials) - set(required) - set(optional))
    if unknown:
        raise CredentialsError(f"unknown field(s) for {provider}: {', '.join(unknown)}")
    missing = [k for k in required if not credentials.get(k)]
    if missing:
        raise CredentialsError(f"{provider} credentials need {', '.join(missing)}")
    for key, value in credentials.items():
        if key == "service_account":
            if not isinstance(value, Mapping) or not {
                "project_id",
                "private_key",
                "client_email",
            } <= set(value):
                raise CredentialsError(
                    "service_account is the key file's JSON (project_id, private_key, client_email)"
                )
        elif key == "phone_numbers":
            if not isinstance(value, Mapping) or not all(
                isinstance(n, str) and n.startswith("+") and isinstance(i, str) and i.isdigit()
                for n, i in value.items()
            ):
                raise CredentialsError('phone_numbers maps "+E164" numbers to phone-number ids')
        elif not isinstance(value, str) or not 1 <= len(value) <= 4096:
            raise CredentialsError(f"{key} is a string of 1 to 4096 characters")
    return dict(credentials)


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
    def _aad(account_id: str, provider: str) -> bytes:
        return f"hermes-provider-account:{account_id}:{provider}".encode()

    def seal(
        self, account_id: str, provider: str, credentials: Mapping[str, Any]
    ) -> tuple[str, bytes]:
        nonce = os.urandom(NONCE_BYTES)
        plain = json.dumps(credentials, separators=(",", ":")).encode()
        sealed = self._keys[self.current].encrypt(nonce, plain, self._aad(account_id, provider))
        return self.current, nonce + sealed

    def open(self, account_id: str, provider: str, key_id: str, blob: bytes) -> dict[str, Any]:
        aead = self._keys.get(key_id)
        if aead is None:
            raise CredentialsError(
                f"credentials sealed with key {key_id!r}, which is not configured"
            )
        try:
            plain = aead.decrypt(
                blob[:NONCE_BYTES], blob[NONCE_BYTES:], self._aad(account_id, provider)
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
