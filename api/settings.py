"""Command API configuration, from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    database_url: str
    twilio_auth_token: str
    public_url: str
    max_body_bytes: int = 64 * 1024
    # POST /v1/messages/batch: 1,000 messages of up to 1,600 characters each, escaped.
    max_batch_body_bytes: int = 16 * 1024 * 1024
    # POST /v1/imports: a contact file (streamed to disk and COPY, never held in memory).
    max_import_body_bytes: int = 4 * 1024**3
    pool_min: int = 2
    pool_max: int = 10
    # Uploads at a time (an import's LAND, a suppression CSV), per process, each with a
    # connection of a pool of their own (api/uploads.py); past them: 429 uploads_busy.
    upload_slots: int = 2
    upload_retry_after_seconds: int = 5
    # An import's LAND is one COPY of the whole file: it runs past the role's
    # statement_timeout, up to this.
    land_statement_timeout: str = "30min"
    # Single POSTs of one key gathered into one transaction for this long (0: each alone).
    gather_linger_seconds: float = 0.002
    # SES events through SNS (api/sns.py): the topics Hermes subscribed to (none: every
    # SNS message is refused), the URL prefixes certificates and SubscribeURLs may have
    # (empty: https://sns.*.amazonaws.com), a CA file their certificate must chain to.
    sns_topic_arns: frozenset[str] = frozenset()
    sns_url_prefixes: tuple[str, ...] = ()
    sns_ca_file: str | None = None
    # WhatsApp Cloud API webhooks: the Meta app's secret (X-Hub-Signature-256; none: every
    # webhook is refused) and the verify token of the subscription handshake.
    whatsapp_app_secret: str = ""
    whatsapp_verify_token: str = ""
    # Vonage delivery receipts: the account's API key and signature secret (none: every
    # receipt is refused).
    vonage_api_key: str = ""
    vonage_signature_secret: str = ""
    # The deployment's FCM token endpoint, besides Google's (FCM_TOKEN_URI: the simulator's
    # in tests): the only token_uri a tenant's FCM key file may name.
    fcm_token_uri: str = ""

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database_url=os.environ["HERMES_API_DATABASE_URL"],
            twilio_auth_token=os.environ.get("TWILIO_AUTH_TOKEN", ""),
            # The URL providers were given for callbacks: their signatures cover it.
            public_url=os.environ["HERMES_PUBLIC_URL"].rstrip("/"),
            max_body_bytes=int(os.environ.get("HERMES_API_MAX_BODY_BYTES", str(64 * 1024))),
            max_batch_body_bytes=int(
                os.environ.get("HERMES_API_MAX_BATCH_BODY_BYTES", str(16 * 1024 * 1024))
            ),
            max_import_body_bytes=int(
                os.environ.get("HERMES_API_MAX_IMPORT_BODY_BYTES", str(4 * 1024**3))
            ),
            pool_min=int(os.environ.get("HERMES_API_POOL_MIN", "2")),
            pool_max=int(os.environ.get("HERMES_API_POOL_MAX", "10")),
            upload_slots=int(os.environ.get("HERMES_API_UPLOAD_SLOTS", "2")),
            upload_retry_after_seconds=int(os.environ.get("HERMES_API_UPLOAD_RETRY_AFTER", "5")),
            land_statement_timeout=os.environ.get("HERMES_API_LAND_STATEMENT_TIMEOUT", "30min"),
            gather_linger_seconds=float(os.environ.get("HERMES_API_GATHER_LINGER", "0.002")),
            sns_topic_arns=frozenset(_list(os.environ.get("HERMES_SNS_TOPIC_ARNS", ""))),
            sns_url_prefixes=tuple(_list(os.environ.get("HERMES_SNS_URL_PREFIXES", ""))),
            sns_ca_file=os.environ.get("HERMES_SNS_CA_FILE") or None,
            whatsapp_app_secret=os.environ.get("HERMES_WHATSAPP_APP_SECRET", ""),
            whatsapp_verify_token=os.environ.get("HERMES_WHATSAPP_VERIFY_TOKEN", ""),
            vonage_api_key=os.environ.get("HERMES_VONAGE_API_KEY", ""),
            vonage_signature_secret=os.environ.get("HERMES_VONAGE_SIGNATURE_SECRET", ""),
            fcm_token_uri=os.environ.get("FCM_TOKEN_URI", ""),
        )


def _list(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]
