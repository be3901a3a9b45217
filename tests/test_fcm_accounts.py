"""A tenant's FCM service-account key chooses nothing about where Hermes connects
(issue 19): its ``token_uri`` is Google's token endpoint (or the deployment's
configured one, the simulator's in tests), any other is refused when the account is
stored (hermes/credentials.py, 422) and by the worker, which never POSTs the signed
JWT grant anywhere else; a key file with fields Google's does not have is refused too."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from hermes.credentials import GOOGLE_TOKEN_URI, CredentialsError, check_shape
from workers.providers.fcm import FcmPush

SIM_TOKEN_URI = "http://127.0.0.1:8091/token"


def _key_file(**extra: Any) -> dict[str, Any]:
    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    return {
        "type": "service_account",
        "project_id": "tenant-project",
        "private_key_id": "0123abcd",
        "private_key": pem,
        "client_email": "firebase-adminsdk@tenant-project.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": GOOGLE_TOKEN_URI,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/x",
        "universe_domain": "googleapis.com",
    } | extra


def _check(key: dict[str, Any], allowed: frozenset[str] = frozenset()) -> dict[str, Any]:
    return check_shape("fcm", {"service_account": key}, fcm_token_uris=allowed)


def test_googles_key_file_is_accepted() -> None:
    assert _check(_key_file())["service_account"]["token_uri"] == GOOGLE_TOKEN_URI
    # the deployment's configured endpoint (the simulator's in tests) too
    assert _check(_key_file(token_uri=SIM_TOKEN_URI), frozenset({SIM_TOKEN_URI}))


@pytest.mark.parametrize(
    "token_uri",
    [
        "http://169.254.169.254/latest/meta-data/",
        "https://oauth2.googleapis.com.evil.example/token",
        "https://oauth2.googleapis.com/token?x=1",
        SIM_TOKEN_URI,  # not configured in this deployment
    ],
)
def test_another_token_uri_is_refused(token_uri: str) -> None:
    with pytest.raises(CredentialsError, match="token_uri"):
        _check(_key_file(token_uri=token_uri))


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(CredentialsError, match="unknown"):
        _check(_key_file(token_url="http://evil.example/"))
    with pytest.raises(CredentialsError, match="universe_domain"):
        _check(_key_file(universe_domain="evil.example"))
    with pytest.raises(CredentialsError, match="private_key"):
        _check(_key_file(private_key="not a key"))


def test_the_worker_never_uses_another_token_uri() -> None:
    # An account stored before the check, or written around it: the adapter refuses it
    # before it could POST its JWT grant there (the registry logs it unusable).
    with pytest.raises(ValueError, match="token_uri"):
        FcmPush(
            _key_file(token_uri="http://169.254.169.254/token"),
            "http://127.0.0.1:1",
            5,
            token_uris=frozenset({GOOGLE_TOKEN_URI}),
        )
    push = FcmPush(_key_file(), "http://127.0.0.1:1", 5, token_uris=frozenset({GOOGLE_TOKEN_URI}))
    assert push.credentials._token_uri == GOOGLE_TOKEN_URI
