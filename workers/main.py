"""Worker process: ``python -m workers``.

One pgqueuer QueueManager (LISTEN/NOTIFY plus a poll) runs the entrypoints, and its
SchedulerManager runs the maintenance schedule. Started through pgqueuer's Python API
(pgqueuer 1.6's ``pgq run`` CLI breaks with typer 0.29).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import psycopg
from pgqueuer import PgQueuer
from pgqueuer.executors import DatabaseRetryEntrypointExecutor, EntrypointExecutorParameters
from pgqueuer.models import Job, Schedule
from psycopg_pool import AsyncConnectionPool

from workers.db import Commands
from workers.entrypoints.sms import send_sms
from workers.providers.twilio import TwilioSms
from workers.queue_driver import SplitListenPsycopgDriver
from workers.settings import Settings

log = logging.getLogger("hermes.worker")


def _retrying(params: EntrypointExecutorParameters) -> DatabaseRetryEntrypointExecutor:
    # Unexpected errors (the database went away mid-job...) re-queue the job with
    # backoff; after that it is held as 'failed' for an operator, never deleted.
    return DatabaseRetryEntrypointExecutor(
        parameters=params, max_attempts=10, max_delay=timedelta(minutes=5)
    )


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
        max_size=max(2, settings.max_concurrent_tasks),
        kwargs={"autocommit": True, "application_name": "hermes-worker"},
        open=False,
    )
    await pool.open(wait=True, timeout=30)
    db = Commands(pool)
    twilio = TwilioSms(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        settings.twilio_api_base_url,
        settings.provider_timeout_seconds,
    )

    pgq = PgQueuer(connection=SplitListenPsycopgDriver(queue_conn, listen_conn))

    # The SDK is synchronous: its calls run in a pool as large as the job concurrency,
    # so a claimed job never queues for a thread while its claim lease runs out.
    threads = ThreadPoolExecutor(settings.max_concurrent_tasks, thread_name_prefix="provider")

    @pgq.entrypoint("send_sms", on_failure="hold", executor_factory=_retrying)
    async def send_sms_job(job: Job) -> None:
        await send_sms(job.payload, db, twilio, settings.public_url, threads)

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
    try:
        await pgq.run(
            dequeue_timeout=settings.poll_interval,
            batch_size=settings.batch_size,
            max_concurrent_tasks=settings.max_concurrent_tasks,
            heartbeat_timeout=settings.heartbeat_timeout,
        )
    finally:
        threads.shutdown(wait=True)
        await pool.close()
        await queue_conn.close()
        await listen_conn.close()
        log.info("worker stopped")


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("HERMES_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # The SDK logs every request's headers at INFO.
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    asyncio.run(run(Settings.from_env()))
