"""The command API: ``uvicorn --factory api.main:create_app``.

Thin by design: each route validates the shape of its input, calls one SQL function
through ``api.db.Commands`` and maps the result (or the SQL error) to HTTP.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from psycopg_pool import AsyncConnectionPool

from api import errors
from api.db import Commands
from api.routes import messages, tenants, webhooks
from api.settings import Settings

log = logging.getLogger("hermes.api")


def create_app(settings: Settings | None = None) -> FastAPI:
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
        await pool.open(wait=True, timeout=30)
        app.state.commands = Commands(pool)
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(
        title="Hermes command API",
        version="0.1.0",
        lifespan=lifespan,
        description="Writes go here; reads go to the PostgREST read API.",
    )
    app.state.settings = settings
    app.add_exception_handler(errors.Problem, errors.problem_handler)
    app.add_exception_handler(psycopg.Error, errors.db_error_handler)
    app.add_exception_handler(RequestValidationError, errors.validation_handler)

    @app.middleware("http")
    async def limit_body(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        limit = (
            settings.max_batch_body_bytes
            if request.url.path == "/v1/messages/batch"
            else settings.max_body_bytes
        )
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return errors.Problem(
                413,
                "payload_too_large",
                f"The request body exceeds {limit} bytes.",
            ).response(request.url.path)
        if length is None and request.method in ("POST", "PUT", "PATCH"):
            # Chunked: count while reading, stop at the limit (never buffer more).
            received = bytearray()
            async for chunk in request.stream():
                received += chunk
                if len(received) > limit:
                    return errors.Problem(
                        413,
                        "payload_too_large",
                        f"The request body exceeds {limit} bytes.",
                    ).response(request.url.path)
            request._body = bytes(received)
        return await call_next(request)

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    app.include_router(tenants.router)
    app.include_router(messages.router)
    app.include_router(webhooks.router)
    return app
