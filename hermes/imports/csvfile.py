"""LAND's reader: a CSV file's records, each with what could be read of it and why not.

A record the reader cannot read whole never stops the file: it comes out with a reason
(``malformed_csv``, ``field_too_large``, ``invalid_encoding``, ``nul_byte``) and what
could be kept, and PARSE rejects it with that reason, so accepted + rejected = rows.
Reads a binary stream incrementally (the upload is never held in memory); a UTF-8 BOM is
dropped; CRLF, LF and quoted newlines are the csv module's.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Iterator
from typing import IO

# The encodings an upload may declare (the form field ``encoding``) -> Python's codec.
ENCODINGS = {
    "utf-8": "utf-8-sig",
    "utf-16": "utf-16",
    "latin-1": "latin-1",
    "iso-8859-1": "latin-1",
    "windows-1252": "cp1252",
}
# A field over this is refused (its record rejected ``field_too_large``): a 10 MB line is
# someone's binary blob, not a contact.
MAX_FIELD_BYTES = 1 << 20

csv.field_size_limit(MAX_FIELD_BYTES)

Record = tuple[list[str], str | None]


class NoHeader(ValueError):
    """The file has no readable header row."""


def _checked(fields: list[str]) -> Record:
    joined = "\x1f".join(fields)
    if "\x00" in joined:
        return [f.replace("\x00", "") for f in fields], "nul_byte: a field holds a NUL byte"
    try:
        joined.encode("utf-8")
    except UnicodeEncodeError:
        # Undecodable bytes come through as lone surrogates (surrogateescape): keep the
        # rest of the row, with U+FFFD where those bytes were.
        kept = [f.encode("utf-8", "surrogateescape").decode("utf-8", "replace") for f in fields]
        return kept, "invalid_encoding: bytes that are not the file's declared encoding"
    return fields, None


def records(stream: IO[bytes], encoding: str = "utf-8") -> Iterator[Record]:
    """Every record of the file, the header first, as (fields, error or None). Raises
    ValueError at once for an encoding it does not know."""
    codec = ENCODINGS.get(encoding.lower())
    if codec is None:
        raise ValueError(f"unknown encoding {encoding!r}; one of {', '.join(ENCODINGS)}")
    return _records(stream, codec)


def _records(stream: IO[bytes], codec: str) -> Iterator[Record]:
    text = io.TextIOWrapper(stream, encoding=codec, errors="surrogateescape", newline="")
    reader = csv.reader(text)
    try:
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                reason = "field_too_large" if "field limit" in str(exc) else "malformed_csv"
                yield [], f"{reason}: line {reader.line_num}: {exc}"
                continue
            yield _checked(fields)
    finally:
        with contextlib.suppress(ValueError):
            text.detach()  # the caller's stream stays theirs (open)


def split_header(rows: Iterator[Record]) -> list[str]:
    """Takes the header record off ``rows``; raises :class:`NoHeader` if unreadable."""
    for fields, error in rows:
        if error is not None:
            raise NoHeader(f"the header row cannot be read ({error})")
        if not any(f.strip() for f in fields):
            continue  # blank lines before the header
        return [f.strip() for f in fields]
    raise NoHeader("the file is empty")
