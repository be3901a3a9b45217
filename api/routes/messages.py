"""Sending and reading messages."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.addresses import Reader
from api.deps import CommandsDep, SubmitsDep, Token
from api.errors import Problem
from api.jsonresponse import JSON

# The most messages one POST /v1/messages/batch takes (app.submit_messages checks it too).
MAX_BATCH = 1000

router = APIRouter(prefix="/v1")


class Step(BaseModel):
    """One step of a cascade (shape only: private.validate_step decides)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    channel: str | None = Field(default=None, max_length=32)
    to: str | None = Field(default=None, max_length=4096)
    from_: str | None = Field(default=None, alias="from", max_length=320)
    body: str | None = Field(default=None, max_length=200_000)
    subject: str | None = Field(default=None, max_length=2000)
    html: str | None = Field(default=None, max_length=500_000)
    title: str | None = Field(default=None, max_length=400)
    data: dict[str, Any] | None = None
    template: dict[str, Any] | None = None  # WhatsApp: {name, language, parameters?}
    timeout_seconds: int | None = None


class MessageCreate(Step):
    """Shape only; what makes a valid message (and whether it may go) is decided in SQL.
    One channel (the fields of a step), or ``channels``: the steps of a cascade, in
    order; ``contact_id`` addresses a contact of the identity graph. The numbers are read
    here first (api.addresses): SQL takes E.164 only."""

    vertical: str | None = Field(default=None, max_length=64)
    category: str | None = Field(default=None, max_length=32)
    channels: list[Step] | None = Field(default=None, max_length=5)
    contact_id: str | None = Field(default=None, max_length=64)


# Channels whose addresses are phone numbers (read with phonenumbers first).
_PHONE_CHANNELS = (None, "sms", "whatsapp")


async def _read_numbers(reader: Reader, step: dict[str, Any]) -> None:
    if step.get("channel") not in _PHONE_CHANNELS:
        return
    if isinstance(step.get("to"), str):
        step["to"] = await reader.address(step["to"], "to")
    if isinstance(step.get("from"), str):
        step["from"] = await reader.address(step["from"], "from")


# The token goes to the command function, which checks it and the scope it needs
# (messages:write to send, read to read) in the same call.


@router.post("/messages", status_code=201)
async def send_message(
    body: MessageCreate,
    token: Token,
    commands: CommandsDep,
    submits: SubmitsDep,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> Response:
    request = body.model_dump(by_alias=True, exclude_unset=True)
    reader = Reader(commands, token, "messages:write")
    await _read_numbers(reader, request)
    for step in request.get("channels") or []:
        await _read_numbers(reader, step)
    # Gathered with other single POSTs of this key into one transaction (api/submit.py).
    result = await submits.submit(token, request, idempotency_key)
    # The JSON the database built, serialized once (no response-model pass).
    headers = {"Idempotent-Replayed": "true"} if result["replayed"] else None
    return JSON(result["message"], status_code=201, headers=headers)


class MessageBatch(BaseModel):
    """Shape only: each item is validated in SQL on its own, so that one bad item does
    not refuse the others."""

    model_config = ConfigDict(extra="forbid", strict=True)
    messages: list[Any]


@router.post("/messages/batch", status_code=200)
async def send_messages(
    request: Request, body: MessageBatch, token: Token, commands: CommandsDep
) -> Response:
    """Up to 1,000 messages in one transaction, answered per item: ``{"results":
    [{"index", "status": 201, "message"} | {"index", "status": 200, "replayed": true,
    "message"} | {"index", "status": 4xx, "problem"}], "accepted", "replayed",
    "rejected"}``. Each item may carry its own ``idempotency_key``."""
    if len(body.messages) > MAX_BATCH:
        raise Problem(
            413,
            "batch_too_large",
            f"A batch takes at most {MAX_BATCH} messages; this one has {len(body.messages)}.",
            "Split the batch.",
        )
    reader = Reader(commands, token, "messages:write")
    items = []
    for item in body.messages:
        if isinstance(item, dict):
            item = dict(item)
            for field in ("to", "from"):
                if field in item:
                    item[field] = await reader.lenient(item[field])
        items.append(item)
    result = await commands.submit_messages(token, items)
    for item in result["results"]:
        problem = item.get("problem")
        if problem is not None:
            item["problem"] = Problem(
                int(problem["status"]), problem["code"], problem["detail"], problem.get("hint")
            ).body(f"{request.url.path}#/messages/{item['index']}")
    return JSON(result)


@router.get("/messages/{message_id}")
async def get_message(message_id: UUID, token: Token, commands: CommandsDep) -> dict[str, Any]:
    return await commands.get_message(token, str(message_id))
