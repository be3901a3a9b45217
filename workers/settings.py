"""Worker configuration, from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

from workers.providers.whatsapp import parse_phone_numbers


@dataclass(frozen=True)
class Settings:
    database_url: str
    public_url: str
    twilio_account_sid: str | None
    twilio_auth_token: str | None
    twilio_api_base_url: str | None
    # Amazon SES v2 (email): region, credentials, the configuration set whose event
    # destination reports to Hermes, and the endpoint (the simulator; None: AWS's).
    # No access key: this worker sends no email.
    ses_region: str
    ses_access_key_id: str | None
    ses_secret_access_key: str | None
    ses_configuration_set: str | None
    ses_endpoint_url: str | None
    # Firebase Cloud Messaging (push): the service-account key file and the API's base
    # URL (the simulator; None: Google's). No key file: this worker sends no push.
    fcm_service_account_file: str | None
    fcm_base_url: str | None
    # The deployment's FCM token endpoint besides Google's (the simulator's in tests): the
    # only token_uri a tenant account's key file may name (hermes/credentials.py).
    fcm_token_uri: str | None
    # WhatsApp Cloud API: the system user's access token, the business numbers'
    # phone-number ids ({"+14155550170": "100000000000001"}), the Graph API's base URL
    # (the simulator; None: Meta's) and version. No token: this worker sends no WhatsApp.
    whatsapp_access_token: str | None
    whatsapp_phone_numbers: dict[str, str]
    whatsapp_api_base_url: str | None
    whatsapp_api_version: str | None
    # Vonage SMS API: the account's key and secret, and its REST host (the simulator's
    # host:port; None: rest.nexmo.com). No key: this worker sends nothing through Vonage.
    vonage_api_key: str | None
    vonage_api_secret: str | None
    vonage_rest_host: str | None
    # Crash recovery: a picked job whose heartbeat is older than this is re-picked by
    # another worker. pgqueuer's heartbeat beats at half this interval.
    heartbeat_timeout: timedelta
    # Wake-up poll in case a NOTIFY was missed (pgqueuer dequeue_timeout).
    poll_interval: timedelta
    # Jobs pgqueuer dequeues at once, and the largest batch one claim_attempts call takes.
    batch_size: int
    # Jobs in flight in one worker (pgqueuer's max_concurrent_tasks): room for a few
    # batches at once; also the bound on concurrent provider connections.
    max_concurrent_tasks: int
    # How long the first job of a batch waits for others (seconds): bigger batches,
    # fewer transactions, at the cost of this much latency.
    batch_linger_seconds: float
    # Database connections of the worker's command pool (batches, receipt loops).
    db_pool_size: int
    provider_timeout_seconds: float
    # The receipt applier: receipts per app.apply_receipts call, and the pause when the
    # inbox is drained (seconds).
    receipt_batch: int
    receipt_idle_seconds: float
    # How often the worker asks for hand-offs overdue for a final receipt (seconds);
    # when they are overdue is the database's setting receipt_lookup_after.
    lookup_poll_seconds: float
    maintenance_cron: str

    # Sandbox tenants' steps: "live" -- through the providers above (a deployment whose
    # providers are the simulators: make run, the tests); otherwise through the
    # SANDBOX_-prefixed provider settings (SANDBOX_TWILIO_API_BASE_URL ...: simulators),
    # and with none of those never sent (provider_not_configured), so that a sandbox
    # message cannot reach a real provider.
    sandbox_providers: str = ""

    @classmethod
    def from_env(cls, prefix: str = "") -> Settings:
        """The settings; ``prefix`` reads the provider settings with it (SANDBOX_)."""
        env = os.environ

        def prefixed_env(name: str, default: str | None = None) -> str | None:
            return env.get(prefix + name, default)

        return cls(
            database_url=env["HERMES_WORKER_DATABASE_URL"],
            # Where providers send status callbacks: the API's public URL. Required: a
            # wrong default would lose every receipt.
            public_url=env["HERMES_PUBLIC_URL"].rstrip("/"),
            twilio_account_sid=env["TWILIO_ACCOUNT_SID"]
            if not prefix
            else prefixed_env("TWILIO_ACCOUNT_SID"),
            twilio_auth_token=env["TWILIO_AUTH_TOKEN"]
            if not prefix
            else prefixed_env("TWILIO_AUTH_TOKEN"),
            twilio_api_base_url=prefixed_env("TWILIO_API_BASE_URL") or None,
            ses_region=prefixed_env("SES_REGION") or env.get("AWS_REGION") or "us-east-1",
            ses_access_key_id=prefixed_env("SES_ACCESS_KEY_ID") or None,
            ses_secret_access_key=prefixed_env("SES_SECRET_ACCESS_KEY") or None,
            ses_configuration_set=prefixed_env("SES_CONFIGURATION_SET", "hermes") or None,
            ses_endpoint_url=prefixed_env("SES_ENDPOINT_URL") or None,
            fcm_service_account_file=prefixed_env("FCM_SERVICE_ACCOUNT_FILE") or None,
            fcm_base_url=prefixed_env("FCM_BASE_URL") or None,
            fcm_token_uri=prefixed_env("FCM_TOKEN_URI") or None,
            whatsapp_access_token=prefixed_env("WHATSAPP_ACCESS_TOKEN") or None,
            whatsapp_phone_numbers=parse_phone_numbers(
                prefixed_env("WHATSAPP_PHONE_NUMBERS") or ""
            ),
            whatsapp_api_base_url=prefixed_env("WHATSAPP_API_BASE_URL") or None,
            whatsapp_api_version=prefixed_env("WHATSAPP_API_VERSION") or None,
            vonage_api_key=prefixed_env("VONAGE_API_KEY") or None,
            vonage_api_secret=prefixed_env("VONAGE_API_SECRET") or None,
            vonage_rest_host=prefixed_env("VONAGE_REST_HOST") or None,
            heartbeat_timeout=timedelta(
                seconds=float(env.get("HERMES_JOB_HEARTBEAT_TIMEOUT", "30"))
            ),
            poll_interval=timedelta(seconds=float(env.get("HERMES_JOB_POLL_INTERVAL", "5"))),
            batch_size=int(env.get("HERMES_WORKER_BATCH_SIZE", "100")),
            max_concurrent_tasks=int(env.get("HERMES_WORKER_CONCURRENCY", "300")),
            db_pool_size=int(env.get("HERMES_WORKER_DB_POOL", "6")),
            batch_linger_seconds=float(env.get("HERMES_WORKER_BATCH_LINGER", "0.02")),
            provider_timeout_seconds=float(env.get("HERMES_PROVIDER_TIMEOUT", "15")),
            receipt_batch=int(env.get("HERMES_RECEIPT_BATCH", "1000")),
            receipt_idle_seconds=float(env.get("HERMES_RECEIPT_IDLE", "0.05")),
            lookup_poll_seconds=float(env.get("HERMES_RECEIPT_LOOKUP_POLL", "5")),
            maintenance_cron=env.get("HERMES_MAINTENANCE_CRON", "* * * * *"),
            sandbox_providers=env.get("HERMES_SANDBOX_PROVIDERS", ""),
        )


@dataclass(frozen=True)
class ImportSettings:
    """The import worker's (``python -m workers imports``)."""

    database_url: str
    heartbeat_timeout: timedelta
    poll_interval: timedelta
    # Import jobs one process runs at once (pgqueuer's floor is 2): parsing is CPU-bound,
    # so more processes (one per core) rather than more jobs per process.
    concurrency: int

    @classmethod
    def from_env(cls) -> ImportSettings:
        env = os.environ
        return cls(
            database_url=env["HERMES_WORKER_DATABASE_URL"],
            heartbeat_timeout=timedelta(
                seconds=float(env.get("HERMES_JOB_HEARTBEAT_TIMEOUT", "30"))
            ),
            poll_interval=timedelta(seconds=float(env.get("HERMES_JOB_POLL_INTERVAL", "5"))),
            concurrency=int(env.get("HERMES_IMPORT_CONCURRENCY", "2")),
        )
