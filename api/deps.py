"""Request dependencies: the command wrapper and the authenticated principal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from api.db import Commands
from api.errors import Problem


async def get_commands(request: Request) -> Commands:
    # async: FastAPI runs a plain def dependency in a thread pool, a thread hop per request.
    commands: Commands = request.app.state.commands
    return commands


CommandsDep = Annotated[Commands, Depends(get_commands)]


@dataclass(frozen=True)
class Principal:
    api_key_id: str
    tenant_id: str | None
    prefix: str

    @property
    def tenant(self) -> str:
        if self.tenant_id is None:
            raise Problem(403, "tenant_key_required", "This endpoint needs a tenant API key.")
        return self.tenant_id


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(
            401,
            "missing_api_key",
            "Missing API key.",
            'Send "Authorization: Bearer <api key>".',
        )
    return token.strip()


def require(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that authenticates the bearer key and checks one scope (in SQL)."""

    async def dependency(request: Request, commands: CommandsDep) -> Principal:
        result: dict[str, Any] = await commands.authenticate(bearer_token(request), scope)
        return Principal(
            api_key_id=str(result["api_key_id"]),
            tenant_id=None if result["tenant_id"] is None else str(result["tenant_id"]),
            prefix=str(result["prefix"]),
        )

    return dependency
