"""LAND's reader: a CSV file's records, each with what could be read of it and why not.

A record the reader cannot read whole never stops the file: it comes out with a reason
(``malformed_csv``, ``field_too_large``, ``record_too_large``, ``too_many_fields``,
``invalid_encoding``, ``nul_byte``) and what could be kept, and PARSE rejects it with
that reason, so accepted + rejected = rows. Memory stays bounded whatever the file: a
physical line is read at most ``MAX_LINE_CHARS`` at a time (the rest of a longer one
is skipped), a record is counted while it is read -- one that spans more than
``MAX_RECORD_LINES`` lines or ``MAX_RECORD_CHARS`` characters (a quoted field that never
ends) is cut off there, rejected ``record_too_large``, and the reading goes on with the
next line -- and a record keeps at most ``MAX_FIELDS`` fields. Bytes that cannot be decoded
at all (a UTF-16 file cut in the middle of a character) end the file with an
``invalid_encoding`` record.
Reads a binary stream incrementally (the upload is never held in memory); a UTF-8 BOM is
dropped; CRLF, LF and quoted newlines are the csv module's.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Generator, Iterator
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
# A physical line over this is no contact either: it is skipped, its record rejected
# ``record_too_large``. More fields than this in one record: ``too_many_fields``.
MAX_LINE_CHARS = 16 << 20
MAX_FIELDS = 10_000
# A record (a quoted field may hold line breaks) is cut off past this many lines or
# characters, counted while it is read: before, a quoted field could go on for the rest
# of the file, its fields piling up, before the field count was ever checked.
MAX_RECORD_LINES = 1_000
MAX_RECORD_CHARS = 16 << 20

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


def records(stream: IO[bytes], encoding: str = "utf-8") -> Generator[Record, None, None]:
    """Every record of the file, the header first, as (fields, error or None). Raises
    ValueError at once for an encoding it does not know."""
    codec = ENCODINGS.get(encoding.lower())
    if codec is None:
        raise ValueError(f"unknown encoding {encoding!r}; one of {', '.join(ENCODINGS)}")
    return _records(stream, codec)


class _RecordTooLarge(Exception):
    """Raised through the csv reader when the record it is reading grows past the
    bounds: the reader starts afresh at the next line."""


class _Lines:
    """The text's lines for the csv reader, none longer than ``MAX_LINE_CHARS``: the
    rest of a longer line is read and dropped, an empty line given in its place, and
    ``too_long`` set for the record it was part of. The lines and characters of the
    record being read are counted (``new_record`` starts the count): asked for more
    than ``MAX_RECORD_LINES`` lines or ``MAX_RECORD_CHARS`` characters, it raises
    :class:`_RecordTooLarge` instead of reading on."""

    def __init__(self, text: io.TextIOWrapper) -> None:
        self.text = text
        self.too_long = False
        self.record_lines = 0
        self.record_chars = 0

    def new_record(self) -> None:
        self.record_lines = 0
        self.record_chars = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.record_lines >= MAX_RECORD_LINES:
            raise _RecordTooLarge(
                f"a record spanning more than {MAX_RECORD_LINES} lines "
                "(a quoted field that does not end?)"
            )
        if self.record_chars >= MAX_RECORD_CHARS:
            raise _RecordTooLarge(f"a record longer than {MAX_RECORD_CHARS} characters")
        line = self.text.readline(MAX_LINE_CHARS)
        self.record_lines += 1
        self.record_chars += len(line)
        if not line:
            raise StopIteration
        if len(line) == MAX_LINE_CHARS and not line.endswith("\n"):
            while True:
                more = self.text.readline(MAX_LINE_CHARS)
                if not more or more.endswith("\n"):
                    break
            self.too_long = True
            return "\n"
        return line


def _records(stream: IO[bytes], codec: str) -> Generator[Record, None, None]:
    text = io.TextIOWrapper(stream, encoding=codec, errors="surrogateescape", newline="")
    lines = _Lines(text)
    reader = csv.reader(lines)
    try:
        while True:
            lines.new_record()
            try:
                fields = next(reader)
            except StopIteration:
                return
            except _RecordTooLarge as exc:
                lines.too_long = False
                yield [], f"record_too_large: line {reader.line_num}: {exc}"
                continue
            except csv.Error as exc:
                lines.too_long = False
                reason = "field_too_large" if "field limit" in str(exc) else "malformed_csv"
                yield [], f"{reason}: line {reader.line_num}: {exc}"
                continue
            except UnicodeDecodeError as exc:
                # Not even surrogateescape can carry it (UTF-16 cut in a character):
                # the rest of the file cannot be read.
                yield (
                    [],
                    f"invalid_encoding: line {reader.line_num + 1}: {exc.reason}; "
                    "the file ends here",
                )
                return
            if lines.too_long:
                lines.too_long = False
                yield (
                    [],
                    f"record_too_large: line {reader.line_num}: "
                    f"a line longer than {MAX_LINE_CHARS} characters",
                )
                continue
            if len(fields) > MAX_FIELDS:
                yield (
                    [],
                    f"too_many_fields: line {reader.line_num}: "
                    f"{len(fields)} fields (at most {MAX_FIELDS})",
                )
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
