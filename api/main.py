"""The command API: ``uvicorn --factory api.main:create_app``.

Thin by design: each route validates the shape of its input, calls one SQL function
through ``api.db.Commands`` and maps the result (or the SQL error) to HTTP.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from psycopg_pool import AsyncConnectionPool
from starlette.types import ASGIApp

from api import errors
from api.body_limit import BodyLimit
from api.db import Commands
from api.routes import (
    compliance,
    imports,
    inbound,
    messages,
    providers,
    senders,
    tenants,
    webhooks,
)
from api.settings import Settings
from api.submit import Submits
from api.uploads import Uploads
from hermes.credentials import Sealer

log = logging.getLogger("hermes.api")


def create_app(settings: Settings | None = None) -> ASGIApp:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = AsyncConnectionPool(
            settings.database_url,
            min_size=settings.pool_min,
            max_size=settings.pool_max,
            kwargs={"autocommit": True, "application_name": "hermes-api"},
            open=False,
        )
        # The uploads' own connections (api/uploads.py): never the pool sends use.
        upload_pool = AsyncConnectionPool(
            settings.database_url,
            min_size=0,
            max_size=max(1, settings.upload_slots),
            kwargs={"autocommit": True, "application_name": "hermes-api-uploads"},
            open=False,
        )
        await pool.open(wait=True, timeout=30)
        await upload_pool.open()
        app.state.commands = Commands(pool)
        app.state.submits = Submits(app.state.commands, linger=settings.gather_linger_seconds)
        app.state.uploads = Uploads(
            upload_pool, settings.upload_slots, settings.upload_retry_after_seconds
        )
        try:
            yield
        finally:
            await upload_pool.close()
            await pool.close()

    app = FastAPI(
        title="Hermes command API",
        version="0.1.0",
        lifespan=lifespan,
        description="Writes go here; reads go to the PostgREST read API.",
    )
    app.state.settings = settings
    # Seals tenants' provider accounts; opens only their webhook-verification secrets
    # (callbacks' and inbound messages' signatures: hermes_api cannot read the rest).
    app.state.sealer = Sealer.from_env()
    app.state.webhook_accounts = webhooks.webhook_accounts(
        app.state.sealer, lambda: app.state.commands
    )
    app.add_exception_handler(errors.Problem, errors.problem_handler)
    app.add_exception_handler(psycopg.Error, errors.db_error_handler)
    app.add_exception_handler(RequestValidationError, errors.validation_handler)

    def body_limit(path: str) -> int:
        if path == "/v1/imports":
            return settings.max_import_body_bytes
        if path in ("/v1/messages/batch", "/v1/suppressions", "/v1/suppressions/remove"):
            return settings.max_batch_body_bytes
        return settings.max_body_bytes

    app.add_middleware(BodyLimit, limit_for=body_limit)

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    app.include_router(tenants.router)
    app.include_router(messages.router)
    app.include_router(compliance.router)
    app.include_router(imports.router)
    app.include_router(inbound.router)
    app.include_router(providers.router)
    app.include_router(senders.router)
    # Provider status callbacks bypass FastAPI (api/routes/webhooks.py).
    return webhooks.StatusCallbacks(
        app,
        settings,
        lambda: app.state.commands,
        app.state.sealer,
        app.state.webhook_accounts,
    )
