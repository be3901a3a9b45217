"""The sender registry (platform admin): which numbers, WhatsApp business numbers and
email addresses or domains belong to which tenant.

Operators register senders and reassign, suspend or release them here; each route is
one SQL call that checks the admin scope itself (``app.register_sender``,
``app.update_sender``, ``app.list_senders``). A message's ``from`` must be one of its
tenant's active senders (or, outside production, a shared simulator number): checked
at intake (422 ``sender_not_allowed``) and again at each step's claim. Tenants read
theirs through PostgREST: ``GET /senders``.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CommandsDep, Token

router = APIRouter(prefix="/v1")


class SenderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: str = Field(max_length=20)
    address: str = Field(max_length=320)
    kind: str | None = Field(default=None, max_length=20)
    tenant_id: UUID | None = None
    shared: bool | None = None
    provider_account_id: UUID | None = None
    number_type: str | None = Field(default=None, max_length=40)
    time_zone: str | None = Field(default=None, max_length=64)


class SenderChange(BaseModel):
    """Only the fields given change; ``null`` clears tenant_id, provider_account_id,
    time_zone."""

    model_config = ConfigDict(extra="forbid")
    tenant_id: UUID | None = None
    shared: bool | None = None
    status: Literal["active", "suspended", "released"] | None = None
    provider_account_id: UUID | None = None
    number_type: str | None = Field(default=None, max_length=40)
    time_zone: str | None = Field(default=None, max_length=64)


@router.post("/senders", status_code=201)
async def register_sender(
    body: SenderCreate, token: Token, commands: CommandsDep
) -> dict[str, Any]:
    return await commands.register_sender(token, body.model_dump(mode="json", exclude_none=True))


@router.patch("/senders/{sender_id}")
async def update_sender(
    sender_id: UUID, body: SenderChange, token: Token, commands: CommandsDep
) -> dict[str, Any]:
    changes = body.model_dump(mode="json", exclude_unset=True)
    return await commands.update_sender(token, str(sender_id), changes)


@router.get("/senders")
async def list_senders(
    token: Token,
    commands: CommandsDep,
    tenant_id: UUID | None = None,
    channel: str | None = None,
    status: str | None = None,
    address: str | None = None,
    shared: bool | None = None,
) -> dict[str, Any]:
    given = {
        "tenant_id": str(tenant_id) if tenant_id else None,
        "channel": channel,
        "status": status,
        "address": address,
        "shared": shared,
    }
    return {
        "data": await commands.list_senders(
            token, {k: v for k, v in given.items() if v is not None}
        )
    }
