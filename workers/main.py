"""Worker processes: ``python -m workers`` (sending) and ``python -m workers imports``.

The send worker: one pgqueuer QueueManager (LISTEN/NOTIFY plus a poll) runs the entrypoints, and its
SchedulerManager runs the maintenance schedule. Started through pgqueuer's Python API
(pgqueuer 1.6's ``pgq run`` CLI breaks with typer 0.29).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta

import psycopg
import uvloop
from pgqueuer import PgQueuer
from pgqueuer.models import Job, Schedule
from psycopg_pool import AsyncConnectionPool

from hermes.accounts import Accounts
from hermes.credentials import Sealer
from workers import loops
from workers.db import Commands
from workers.entrypoints.erasure import delete_at_provider
from workers.entrypoints.imports import ImportJobs
from workers.entrypoints.send import SendBatcher, attempt_of
from workers.providers.registry import Registry, deployment_providers
from workers.queue_driver import SplitListenPsycopgDriver
from workers.settings import ImportSettings, Settings

log = logging.getLogger("hermes.worker")


async def run(settings: Settings) -> None:
    os.environ.setdefault("PGQUEUER_SCHEMA", "pgqueuer")
    queue_conn = await psycopg.AsyncConnection.connect(
        settings.database_url, autocommit=True, application_name="hermes-worker-queue"
    )
    listen_conn = await psycopg.AsyncConnection.connect(
        settings.database_url, autocommit=True, application_name="hermes-worker-listen"
    )
    pool = AsyncConnectionPool(
        settings.database_url,
        min_size=1,
        max_size=max(2, settings.db_pool_size),
        kwargs={"autocommit": True, "application_name": "hermes-worker"},
        open=False,
    )
    await pool.open(wait=True, timeout=30)
    db = Commands(pool)
    # Refused (HM422 provider_timeout_exceeds_lease) if a provider call could outlast the
    # claim lease: the worker then exits with the problem instead of risking double sends.
    await db.check_settings(timedelta(seconds=settings.provider_timeout_seconds))
    providers = deployment_providers(settings)
    if settings.sandbox_providers == "live":
        sandbox = providers  # this deployment's providers are the simulators
    else:
        sandbox = deployment_providers(Settings.from_env(prefix="SANDBOX_"))
    registry = Registry(
        providers,
        sandbox,
        Accounts(Sealer.from_env(), db.provider_account_credentials, fill=db.fill_webhook_secrets),
        settings,
    )
    batcher = SendBatcher(
        db,
        registry,
        settings.public_url,
        max_batch=settings.batch_size,
        linger_seconds=settings.batch_linger_seconds,
    )

    pgq = PgQueuer(connection=SplitListenPsycopgDriver(queue_conn, listen_conn))

    # One retry policy, SQL's: provider errors go to app.record_send_error, and a job that
    # fails unexpectedly (the database went away mid-batch...) is held as 'failed', never
    # deleted; app.run_maintenance's sweep gives its attempt a new job once the attempt
    # has been idle for private.settings requeue_after (2 minutes).
    @pgq.entrypoint("send", on_failure="hold")
    async def send_job(job: Job) -> None:
        await batcher.send(attempt_of(job.payload))

    # The jobs enqueued before every channel had one entrypoint.
    @pgq.entrypoint("send_sms", on_failure="hold")
    async def send_sms_job(job: Job) -> None:
        await batcher.send(attempt_of(job.payload))

    # A cascade step's receipt timeout (app.expire_steps decides whether it expired).
    @pgq.entrypoint("step_timeout", on_failure="hold")
    async def step_timeout_job(job: Job) -> None:
        log.info(
            "step timeout %s: %s",
            attempt_of(job.payload),
            await db.expire_steps([attempt_of(job.payload)]),
        )

    # Erasure: the provider's copy of an erased person's message (private.erase_addresses).
    @pgq.entrypoint("provider_delete", on_failure="hold")
    async def provider_delete_job(job: Job) -> None:
        await delete_at_provider(registry, job.payload)

    @pgq.schedule("maintenance", settings.maintenance_cron)
    async def maintenance(_schedule: Schedule) -> None:
        log.info("maintenance: %s", await db.run_maintenance())

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, pgq.shutdown.set)

    log.info(
        "worker started (heartbeat timeout %ss, poll %ss)",
        settings.heartbeat_timeout.total_seconds(),
        settings.poll_interval.total_seconds(),
    )
    stop = asyncio.Event()
    background = [
        asyncio.create_task(
            loops.apply_receipts(
                db, stop, batch=settings.receipt_batch, idle=settings.receipt_idle_seconds
            ),
            name="apply-receipts",
        ),
        asyncio.create_task(
            loops.lookup_receipts(
                db,
                registry,
                stop,
                every=settings.lookup_poll_seconds,
            ),
            name="lookup-receipts",
        ),
    ]
    try:
        await pgq.run(
            dequeue_timeout=settings.poll_interval,
            batch_size=settings.batch_size,
            max_concurrent_tasks=settings.max_concurrent_tasks,
            heartbeat_timeout=settings.heartbeat_timeout,
        )
    finally:
        stop.set()
        await asyncio.gather(*background, return_exceptions=True)
        await registry.close()
        await pool.close()
        await queue_conn.close()
        await listen_conn.close()
        log.info("worker stopped")


async def run_imports(settings: ImportSettings) -> None:
    """The import worker: PARSE and MERGE jobs only, in a process of its own, so that a
    file's CPU-bound parsing never delays a send."""
    os.environ.setdefault("PGQUEUER_SCHEMA", "pgqueuer")
    queue_conn = await psycopg.AsyncConnection.connect(
        settings.database_url, autocommit=True, application_name="hermes-import-queue"
    )
    listen_conn = await psycopg.AsyncConnection.connect(
        settings.database_url, autocommit=True, application_name="hermes-import-listen"
    )
    pool = AsyncConnectionPool(
        settings.database_url,
        min_size=1,
        max_size=settings.concurrency + 1,
        kwargs={"autocommit": True, "application_name": "hermes-import-worker"},
        open=False,
    )
    await pool.open(wait=True, timeout=30)
    jobs = ImportJobs(pool)
    pgq = PgQueuer(connection=SplitListenPsycopgDriver(queue_conn, listen_conn))

    # Held as 'failed' if it raises (a bug, the database gone): the import stays in its
    # stage and app.run_maintenance's sweep gives it its jobs again.
    # A job that fails is counted first (the third failure fails the import for good).
    async def counted(job: Job, stage: str, run: Callable[[bytes | None], Awaitable[None]]) -> None:
        try:
            await run(job.payload)
        except Exception as exc:
            with contextlib.suppress(Exception):
                await jobs.failed(job.payload, stage, exc)
            raise

    @pgq.entrypoint("import_parse", on_failure="hold")
    async def import_parse(job: Job) -> None:
        await counted(job, "parse", jobs.parse)

    @pgq.entrypoint("import_merge", on_failure="hold")
    async def import_merge(job: Job) -> None:
        await counted(job, "merge", jobs.merge)

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, pgq.shutdown.set)
    log.info("import worker started (concurrency %s)", settings.concurrency)
    try:
        await pgq.run(
            dequeue_timeout=settings.poll_interval,
            batch_size=1,
            max_concurrent_tasks=max(2, settings.concurrency),  # pgqueuer: >= 2 x batch
            heartbeat_timeout=settings.heartbeat_timeout,
        )
    finally:
        await pool.close()
        await queue_conn.close()
        await listen_conn.close()
        log.info("import worker stopped")


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("HERMES_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # The SDK logs every request's headers at INFO.
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    logging.getLogger("twilio.async_http_client").setLevel(logging.WARNING)
    # uvloop: the event loop is most of a worker's own CPU (SDK calls, SQL calls).
    try:
        if sys.argv[1:] == ["imports"]:
            uvloop.run(run_imports(ImportSettings.from_env()))
        else:
            uvloop.run(run(Settings.from_env()))
    except psycopg.Error as exc:
        if not (exc.sqlstate or "").startswith("HM"):
            raise
        # A refusal of the worker's settings (app.check_worker_settings): say why, exit 2.
        log.error(
            "worker refused: %s (%s) %s",
            exc.diag.message_primary,
            exc.diag.message_detail,
            exc.diag.message_hint or "",
        )
        raise SystemExit(2) from None
