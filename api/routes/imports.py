"""Contact imports (scope imports:write): LAND happens here, the other stages in the
import worker (workers/entrypoints/imports.py).

``POST /v1/imports`` takes a CSV upload (``multipart/form-data``: ``file``, and optional
``kind``, ``mapping`` (JSON), ``parser_version``, ``encoding``, ``observed_at``) or JSON
rows (``{"kind"?, "mapping"?, "rows": [{column: value}...]}``). The upload is spooled
to disk by Starlette, never held in memory, and read record by record
(hermes/imports/csvfile.py) straight into one COPY, in the transaction that creates the
import (app.begin_import ... app.finish_landing): the answer (202, the import's ``id``)
comes once every row is landed, and an upload that fails leaves nothing behind. An
upload takes one of a few upload slots and a connection of the uploads' own pool
(api/uploads.py): when all are busy it is answered 429 ``uploads_busy``. A
record the reader cannot read is landed with its reason and rejected by PARSE: a bad
row never fails the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi import Path as FastPath
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api.deps import CommandsDep, Token, UploadsDep
from api.errors import Problem
from api.jsonresponse import JSON
from api.uploads import Uploads
from hermes.imports import csvfile
from hermes.imports.parse import DEFAULT_VERSION, VERSIONS, MappingError, resolve_columns
from hermes.sqlcall import call_on

router = APIRouter(prefix="/v1")

# Rows read and encoded per hop to the thread pool (the reading is CPU work: it stays
# off the event loop that serves the API's other requests).
_BATCH = 5_000
# ... or fewer, when they are large: a batch is held in memory while it is sent.
_BATCH_CHARS = 32 << 20
MAX_JSON_ROWS = 100_000


class ImportRows(BaseModel):
    """JSON rows: objects keyed by column name (the header is their keys, in the order
    first seen), or arrays under an explicit ``header``."""

    model_config = ConfigDict(extra="forbid", strict=True)
    kind: str | None = Field(default=None, max_length=32)
    mapping: dict[str, Any] | None = None
    parser_version: str | None = Field(default=None, max_length=32)
    observed_at: str | None = Field(default=None, max_length=64)
    file_name: str | None = Field(default=None, max_length=255)
    header: list[str] | None = Field(default=None, max_length=1600)
    rows: list[dict[str, Any] | list[Any]] = Field(max_length=MAX_JSON_ROWS)


_NULL = "\\N"  # COPY's NULL


def _copy_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def _encode(records: Iterator[csvfile.Record], first_row: int, limit: int) -> tuple[bytes, int]:
    """Up to ``limit`` records, or about ``_BATCH_CHARS`` of them, as COPY text lines
    (row_number, payload, error)."""
    lines: list[str] = []
    n = first_row
    size = 0
    for fields, error in records:
        # orjson escapes control characters, so a payload's only COPY special is "\".
        payload = orjson.dumps(fields).decode().replace("\\", "\\\\")
        line = f"{n}\t{payload}\t{_NULL if error is None else _copy_escape(error)}\n"
        lines.append(line)
        size += len(line)
        n += 1
        if n - first_row >= limit or size >= _BATCH_CHARS:
            break
    return "".join(lines).encode(), n - first_row


def _json_records(body: ImportRows) -> tuple[list[str], Iterator[csvfile.Record]]:
    header: list[str] = list(body.header or [])
    if body.header is None:
        seen: dict[str, None] = {}
        for row in body.rows:
            if isinstance(row, dict):
                seen.update(dict.fromkeys(row))
        header = list(seen)

    def value(v: Any) -> str | None:
        if v is None:
            return ""
        if isinstance(v, str):
            return v
        if isinstance(v, bool | int | float):
            return str(v).lower() if isinstance(v, bool) else str(v)
        return None

    def records() -> Iterator[csvfile.Record]:
        for row in body.rows:
            raw = [row.get(h) for h in header] if isinstance(row, dict) else row
            extra = isinstance(row, dict) and any(k not in header for k in row)
            fields = [value(v) for v in raw]
            if extra or any(f is None for f in fields):
                yield [], "invalid_value: a value is not a string, number, boolean or null"
            else:
                yield csvfile._checked([f or "" for f in fields])

    return header, records()


async def _json_body(request: Request) -> bytes:
    """A JSON body, held in memory: so at most the batch limit, not the upload limit of
    this path (a file goes as multipart, spooled to disk)."""
    limit = request.app.state.settings.max_batch_body_bytes
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(
                413,
                "payload_too_large",
                f"JSON rows are limited to {limit} bytes.",
                "Upload a CSV file as multipart/form-data.",
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _form_text(form: Any, name: str) -> str | None:
    value = form.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Problem(422, "invalid_field", f'"{name}" must be a text field.')
    return value


@router.post("/imports", status_code=202)
async def create_import(request: Request, token: Token, uploads: UploadsDep) -> Response:
    """LAND: the file's rows into file_rows, then PARSE -> MERGE in the import worker.
    An upload slot (api/uploads.py) from the first byte to the answer, else 429."""
    async with uploads.slot():
        return await _land(request, token, uploads)


async def _land(request: Request, token: str, uploads: Uploads) -> Response:
    content_type = request.headers.get("content-type", "")
    meta: dict[str, Any]
    records: Iterator[csvfile.Record]
    if content_type.startswith("multipart/form-data"):
        try:
            form = await request.form(max_files=1, max_fields=10, max_part_size=256 * 1024)
        except HTTPException as exc:
            raise Problem(
                400, "invalid_multipart", f"The upload cannot be read: {exc.detail}."
            ) from None
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Problem(422, "missing_file", 'A CSV upload needs a "file" field.')
        mapping_text = _form_text(form, "mapping")
        try:
            mapping = orjson.loads(mapping_text) if mapping_text else None
        except orjson.JSONDecodeError:
            raise Problem(422, "invalid_mapping", '"mapping" must be a JSON object.') from None
        if mapping is not None and not isinstance(mapping, dict):
            raise Problem(422, "invalid_mapping", '"mapping" must be a JSON object.')
        encoding = _form_text(form, "encoding") or "utf-8"
        try:
            records = csvfile.records(upload.file, encoding)
        except ValueError as exc:
            raise Problem(422, "invalid_encoding", str(exc)) from None
        try:
            header = await run_in_threadpool(csvfile.split_header, records)
        except csvfile.NoHeader as exc:
            raise Problem(422, "missing_header", f"The file has no header row: {exc}.") from None
        meta = {
            "kind": _form_text(form, "kind"),
            "mapping": mapping,
            "parser_version": _form_text(form, "parser_version"),
            "observed_at": _form_text(form, "observed_at"),
            "file_name": upload.filename,
            "encoding": encoding,
        }
    elif content_type.startswith("application/json"):
        try:
            body = ImportRows.model_validate_json(await _json_body(request))
        except ValueError as exc:
            raise Problem(
                422,
                "invalid_request",
                'Send {"rows": [{column: value}...], "kind"?, "mapping"?} or a CSV file '
                "as multipart.",
                str(exc)[:500],
            ) from None
        header, records = _json_records(body)
        meta = body.model_dump(exclude={"rows", "header"}) | {"encoding": "utf-8"}
    else:
        raise Problem(
            415,
            "unsupported_media_type",
            'Send a CSV file as multipart/form-data (field "file") or JSON rows.',
        )

    meta["parser_version"] = meta.get("parser_version") or DEFAULT_VERSION
    if meta["parser_version"] not in VERSIONS:
        raise Problem(
            422,
            "unknown_parser_version",
            f"Unknown parser version {meta['parser_version']!r}.",
            f"One of {', '.join(VERSIONS)}.",
        )
    # The mapping is checked against the header here, before anything is written
    # (PARSE resolves it again, with its own version's rules).
    try:
        resolve_columns(header, meta.get("mapping"), meta.get("kind") or "universe")
    except MappingError as exc:
        raise Problem(422, exc.code, str(exc)) from None
    meta = {k: v for k, v in meta.items() if v is not None} | {"header": header}

    # The uploads' own pool: LAND holds its connection for the whole COPY. That one
    # statement runs as long as the file takes, past the role's statement_timeout.
    timeout = request.app.state.settings.land_statement_timeout
    async with uploads.pool.connection() as conn, conn.transaction():
        await conn.execute("SELECT set_config('statement_timeout', %s, true)", (timeout,))
        begun = await call_on(conn, "SELECT app.begin_import(%s, %s) AS r", (token, Jsonb(meta)))
        rows = 0
        async with conn.cursor().copy(
            b"COPY pg_temp.import_landing (row_number, payload, error) FROM STDIN"
        ) as copy:
            while True:
                data, n = await run_in_threadpool(_encode, records, rows + 1, _BATCH)
                if n == 0:
                    break
                await copy.write(data)
                rows += n
        result = await call_on(
            conn, "SELECT app.finish_landing(%s, %s, %s) AS r", (token, begun["id"], rows)
        )
    return JSON(result, status_code=202, headers={"Location": f"/v1/imports/{result['id']}"})


# An import id is a bigint: a larger number is refused (422), never a 500.
ImportId = Annotated[int, FastPath(ge=1, le=2**63 - 1)]


@router.get("/imports/{import_id}")
async def get_import(import_id: ImportId, token: Token, commands: CommandsDep) -> Response:
    return JSON(await commands.get_import(token, import_id))


class Reparse(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    parser_version: str = Field(max_length=32)


@router.post("/imports/{import_id}/reparse", status_code=202)
async def reparse_import(
    import_id: ImportId, body: Reparse, token: Token, commands: CommandsDep
) -> Response:
    """PARSE -> MERGE again over the landed rows, with another parser version."""
    if body.parser_version not in VERSIONS:
        raise Problem(
            422,
            "unknown_parser_version",
            f"Unknown parser version {body.parser_version!r}.",
            f"One of {', '.join(VERSIONS)}.",
        )
    result = await commands.reparse_import(token, import_id, body.parser_version)
    return JSON(result, status_code=202, headers={"Location": f"/v1/imports/{result['id']}"})
