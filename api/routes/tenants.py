"""Tenants (platform admin) and a tenant's API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CommandsDep, Token

router = APIRouter(prefix="/v1")


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=1000)
    environment: Literal["prod", "sandbox", "test"] = "sandbox"
    default_sms_from: str | None = Field(default=None, max_length=100)
    default_email_from: str | None = Field(default=None, max_length=320)
    default_whatsapp_from: str | None = Field(default=None, max_length=100)


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=1000)
    scopes: list[str] = Field(max_length=10)
    expires_at: datetime | None = None


class KeyRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    overlap_seconds: int = Field(default=86400, ge=0, le=30 * 86400)


# Each command checks the token and the scope it needs in SQL (admin for tenants,
# keys:write for keys) and acts for that key's tenant. A key creates, rotates or
# revokes only keys whose scopes it holds itself (403 scope_escalation).


@router.post("/tenants", status_code=201)
async def create_tenant(body: TenantCreate, token: Token, commands: CommandsDep) -> dict[str, Any]:
    return await commands.create_tenant(
        token,
        body.name,
        body.environment,
        body.default_sms_from,
        body.default_email_from,
        body.default_whatsapp_from,
    )


@router.get("/api-keys")
async def list_api_keys(token: Token, commands: CommandsDep) -> dict[str, Any]:
    return {"data": await commands.list_api_keys(token)}


@router.post("/api-keys", status_code=201)
async def create_api_key(body: KeyCreate, token: Token, commands: CommandsDep) -> dict[str, Any]:
    expires = body.expires_at.isoformat() if body.expires_at else None
    return await commands.create_api_key(token, body.name, body.scopes, expires)


@router.post("/api-keys/{key_id}/rotate", status_code=201)
async def rotate_api_key(
    key_id: UUID, token: Token, commands: CommandsDep, body: KeyRotate | None = None
) -> dict[str, Any]:
    overlap = (body or KeyRotate()).overlap_seconds
    return await commands.rotate_api_key(token, str(key_id), overlap)


@router.post("/api-keys/{key_id}/revoke")
async def revoke_api_key(key_id: UUID, token: Token, commands: CommandsDep) -> dict[str, Any]:
    return await commands.revoke_api_key(token, str(key_id))
