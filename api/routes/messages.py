"""Sending and reading messages."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CommandsDep, Principal, require

router = APIRouter(prefix="/v1")


class MessageCreate(BaseModel):
    """Shape only; what makes a valid phone number or body is decided in SQL."""

    model_config = ConfigDict(extra="forbid", strict=True)
    to: str = Field(max_length=64)
    body: str = Field(max_length=20000)
    from_: str | None = Field(default=None, alias="from", max_length=64)


Sender = Annotated[Principal, Depends(require("messages:write"))]
Reader = Annotated[Principal, Depends(require("read"))]


@router.post("/messages", status_code=201)
async def send_message(
    body: MessageCreate,
    who: Sender,
    commands: CommandsDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> dict[str, Any]:
    result = await commands.submit_message(
        who.tenant,
        who.api_key_id,
        body.model_dump(by_alias=True, exclude_unset=True),
        idempotency_key,
    )
    if result["replayed"]:
        response.headers["Idempotent-Replayed"] = "true"
    message: dict[str, Any] = result["message"]
    return message


@router.get("/messages/{message_id}")
async def get_message(message_id: UUID, who: Reader, commands: CommandsDep) -> dict[str, Any]:
    return await commands.get_message(who.tenant, str(message_id))
