"""Consent events and suppression lists (scope compliance:write).

What an event or a list entry may say, and what it changes, is decided in SQL
(private.validate_consent, private.record_consents, private.record_suppressions);
these routes read the addresses people type (api.addresses) and call one function.
"""

from __future__ import annotations

from typing import IO, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api.addresses import Reader
from api.deps import CommandsDep, Token, UploadsDep
from api.errors import Problem
from api.jsonresponse import JSON
from api.uploads import Uploads
from hermes.imports import csvfile

router = APIRouter(prefix="/v1")

SCOPE = "compliance:write"
# Addresses one suppression request takes (SQL checks it too: HM413 too_many_entries).
MAX_ENTRIES = 10_000
# Header names recognised in a CSV upload (case-insensitive); else the first column.
CSV_COLUMNS = ("address", "phone", "phone_number", "number", "mobile", "email", "email_address")


class ConsentCreate(BaseModel):
    """Shape only: SQL decides what is valid."""

    model_config = ConfigDict(extra="forbid", strict=True)
    address: str = Field(max_length=320)
    kind: str = Field(max_length=32)
    channel: str | None = Field(default=None, max_length=32)
    scope: str | None = Field(default=None, max_length=32)
    vertical: str | None = Field(default=None, max_length=64)
    sender: str | None = Field(default=None, max_length=320)
    source: str | None = Field(default=None, max_length=32)
    evidence: dict[str, Any] | None = None
    occurred_at: str | None = Field(default=None, max_length=64)


@router.post("/consents", status_code=201)
async def record_consent(body: ConsentCreate, token: Token, commands: CommandsDep) -> Response:
    """Records one opt-in or opt-out (``{"address", "kind", "channel"?, "scope"?, ...}``)."""
    event = body.model_dump(exclude_unset=True)
    reader = Reader(commands, token, SCOPE)
    event["address"] = await reader.address(body.address, "address")
    if body.sender is not None:
        event["sender"] = await reader.address(body.sender, "sender")
    return JSON(await commands.record_consent(token, event), status_code=201)


class SuppressionList(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    list_name: str = Field(alias="list", max_length=32)
    addresses: list[Any] = Field(max_length=MAX_ENTRIES)
    reason: str | None = Field(default=None, max_length=500)


async def _entries(request: Request, uploads: Uploads) -> tuple[str, list[Any], str | None]:
    """The list, entries and reason of a JSON body or of a CSV upload
    (multipart/form-data: ``file``, ``list``, ``reason``?; read in an upload slot,
    api/uploads.py)."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        async with uploads.slot():
            form = await request.form(max_files=1, max_fields=10)
            upload = form.get("file")
            list_name = form.get("list")
            reason = form.get("reason")
            if not isinstance(upload, UploadFile):
                raise Problem(422, "missing_file", 'A CSV upload needs a "file" field.')
            if not isinstance(list_name, str):
                raise Problem(422, "missing_list", 'A CSV upload needs a "list" field.')
            addresses = await run_in_threadpool(csv_addresses, upload.file)
        return list_name, addresses, reason if isinstance(reason, str) else None
    try:
        body = SuppressionList.model_validate_json(await request.body())
    except ValueError as exc:
        raise Problem(
            422,
            "invalid_request",
            'Send {"list", "addresses": [...], "reason"?} as JSON, or a CSV file as multipart.',
            str(exc)[:500],
        ) from None
    return body.list_name, body.addresses, body.reason


def csv_addresses(stream: IO[bytes]) -> list[str]:
    """One address per row: the column named like an address (address, phone, email...)
    if the first row is a header, else the first column. Blank rows are skipped; a BOM
    and CRLF line ends are fine. Read record by record (hermes/imports/csvfile.py: every
    record bounded) and counted while read: past ``MAX_ENTRIES`` addresses it stops
    there, 413 too_many_entries, without reading the rest."""
    rows = csvfile.records(stream, "utf-8")
    addresses: list[str] = []
    column: int | None = None
    try:
        for fields, error in rows:
            if error is not None:
                if error.startswith("invalid_encoding"):
                    raise Problem(422, "invalid_csv", "The CSV file is not UTF-8.")
                raise Problem(422, "invalid_csv", f"The CSV file cannot be read: {error}.")
            if not any(c.strip() for c in fields):
                continue
            if column is None:
                header = [c.strip().lower() for c in fields]
                column = next((header.index(c) for c in CSV_COLUMNS if c in header), None)
                if column is not None:
                    continue
                column = 0
            if len(addresses) == MAX_ENTRIES:
                raise Problem(
                    413,
                    "too_many_entries",
                    f"At most {MAX_ENTRIES} addresses a request; this file has more.",
                    "Split the file.",
                    limit=MAX_ENTRIES,
                )
            addresses.append(fields[column].strip() if column < len(fields) else "")
    finally:
        rows.close()  # the upload's file stays open: Starlette closes it
    return addresses


async def _record(
    request: Request, token: str, commands: CommandsDep, uploads: Uploads, action: str
) -> Response:
    list_name, entries, reason = await _entries(request, uploads)
    reader = Reader(commands, token, SCOPE)
    read: list[Any] = []
    for entry in entries:
        if isinstance(entry, dict) and "address" in entry:
            read.append({**entry, "address": await reader.lenient(entry["address"])})
        else:
            read.append(await reader.lenient(entry))
    return JSON(await commands.record_suppressions(token, action, list_name, read, reason))


@router.post("/suppressions", status_code=200)
async def add_suppressions(
    request: Request, token: Token, commands: CommandsDep, uploads: UploadsDep
) -> Response:
    """Adds up to 10,000 addresses to a list (do_not_contact, litigator, hard_bounce,
    complaint): JSON ``{"list", "addresses": [...], "reason"?}`` or a CSV upload.
    Answers ``{"list", "action", "recorded", "refused": [{index, code, detail}]}``."""
    return await _record(request, token, commands, uploads, "add")


@router.post("/suppressions/remove", status_code=200)
async def remove_suppressions(
    request: Request, token: Token, commands: CommandsDep, uploads: UploadsDep
) -> Response:
    """Takes addresses off a list (same body as POST /v1/suppressions)."""
    return await _record(request, token, commands, uploads, "remove")


class PolicyUpdate(BaseModel):
    """Shape only: SQL validates (private.set_tenant_policy)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    quiet_start: str | None = Field(default=None, max_length=8)
    quiet_end: str | None = Field(default=None, max_length=8)
    cooldown_same_seconds: int | None = None
    cooldown_cross_seconds: int | None = None
    content_dedup_seconds: int | None = None
    default_category: str | None = Field(default=None, max_length=32)
    cascade_channels: list[str] | None = Field(default=None, max_length=5)
    step_timeouts: dict[str, int] | None = None
    providers: dict[str, list[str]] | None = None


@router.get("/policy")
async def get_policy(token: Token, commands: CommandsDep) -> Response:
    """The tenant's compliance policy, with the defaults where it set nothing (read)."""
    return JSON(await commands.get_tenant_policy(token))


@router.put("/policy")
async def set_policy(body: PolicyUpdate, token: Token, commands: CommandsDep) -> Response:
    """Sets part of the policy: the quiet window (narrows the legal one, never widens
    it), cooldowns, the content-dedup window, the default category, the cascade's order
    and step timeouts, and the providers of each channel in the order they are tried."""
    return JSON(await commands.set_tenant_policy(token, body.model_dump(exclude_unset=True)))


class Erasure(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    addresses: list[Any] = Field(min_length=1, max_length=100)


@router.post("/erasures", status_code=200)
async def erase(body: Erasure, token: Token, commands: CommandsDep) -> Response:
    """Forgets a person's addresses (GDPR / CCPA erasure): their personal data is removed
    from messages, ledgers, receipts and inbound messages; a one-way hash of each address
    stays on an erasure tombstone so that they are never messaged again. Answers
    ``{"erased", "refused": [{index, code, detail}], "counts"}``."""
    reader = Reader(commands, token, SCOPE)
    addresses = [await reader.lenient(a) for a in body.addresses]
    return JSON(await commands.erase_addresses(token, addresses))
