"""The import's pure parts: the CSV reader's per-record errors, header recognition and
mappings, the parser's values and rejections, the postal normalizer, and the
North American fast path of hermes.addresses.normalize_phone (against phonenumbers'
own parse, property-tested)."""

from __future__ import annotations

import io
from typing import Any

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hermes.addresses import InvalidPhone, NeedsRegion, normalize_phone
from hermes.imports import csvfile, postal
from hermes.imports.parse import Context, MappingError, parse_row, resolve_columns

HEADER = ["First Name", "Last Name", "Phone 1", "Mobile", "E-mail", "Street Address", "City",
          "State", "ZIP Code", "External ID", "Vertical", "notes"]  # fmt: skip


def _ctx(version: str = "hermes-1", mapping: dict[str, Any] | None = None) -> Context:
    return Context(resolve_columns(HEADER, mapping), "US", "2026-01-01T00:00:00+00:00", version)


def _row(**over: str) -> list[str]:
    row = dict(zip(HEADER, ["Zoë", "O'Brien", "(415) 626-0101", "+1 415.626.0102",
                            " MAILTO:Zoe@Example.COM ", "12 north Main Street, Apt. 4",
                            "san  francisco", "Calif.", "94107-1234", "CRM-1", "Solar", ""],
                   strict=True))  # fmt: skip
    row.update({k.replace("_", " "): v for k, v in over.items()})
    return list(row.values())


def test_common_headers_are_recognised() -> None:
    cols = resolve_columns(HEADER, None).as_json(HEADER)
    assert cols == {
        "first_name": "First Name", "last_name": "Last Name", "line1": "Street Address",
        "city": "City", "region": "State", "postal_code": "ZIP Code",
        "external_id": "External ID", "vertical": "Vertical",
        "phones": ["Phone 1", "Mobile"], "emails": ["E-mail"], "external_system": "import",
    }  # fmt: skip


def test_a_mapping_overrides_recognition_and_is_checked() -> None:
    cols = resolve_columns(
        HEADER, {"phones": ["Mobile"], "name": "notes", "external_system": "crm"}
    )
    assert cols.phones == (3,) and cols.single["full_name"] == 11 and cols.external_system == "crm"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"shoe": "City"}, "unknown_field"),
        ({"phones": ["Fax"]}, "unknown_column"),
        ({"city": 3}, "invalid_mapping"),
        ({"external_system": ""}, "invalid_mapping"),
    ]
    for mapping, code in cases:
        with pytest.raises(MappingError) as err:
            resolve_columns(HEADER, mapping)
        assert err.value.code == code
    with pytest.raises(MappingError) as err:
        resolve_columns(["notes", "misc"], None)
    assert err.value.code == "no_recognised_columns"


def test_a_row_is_normalized() -> None:
    x = parse_row(7, _row(), None, _ctx())
    assert x == (
        7, "Zoë", "O'Brien", "zoë o'brien", ["+14156260101", "+14156260102"], ["zoe@example.com"],
        "12 N MAIN ST APT 4", "SAN FRANCISCO", "CA", "94107", "US", "import", "CRM-1", "Solar",
        1.0, "2026-01-01T00:00:00+00:00", None, None, None,
    )  # fmt: skip


def test_bad_values_are_dropped_and_noted_bad_rows_rejected() -> None:
    x = parse_row(1, _row(Mobile="call me", **{"E-mail": "bob@"}), None, _ctx())
    assert x[4] == ["+14156260101"] and x[5] == []
    assert x[16] is None and "phone 'call me' dropped" in x[17] and "email 'bob@' dropped" in x[17]
    # The same number twice is one phone.
    assert parse_row(1, _row(Mobile="415 626 0101"), None, _ctx())[4] == ["+14156260101"]
    assert parse_row(2, [""] * len(HEADER), None, _ctx())[16] == "blank_row"
    ragged = parse_row(3, _row()[:5], None, _ctx())
    assert ragged[16:] == ("ragged_row", "5 fields; the header has 12", None)
    landed = parse_row(4, [], "field_too_large: line 9: field larger than field limit", _ctx())
    assert landed[16] == "field_too_large" and "line 9" in landed[17]


def test_parser_versions_differ_only_where_documented() -> None:
    row = _row(Mobile="415-626-0102 x12")
    assert parse_row(1, row, None, _ctx("hermes-1"))[4] == ["+14156260101"]
    assert parse_row(1, row, None, _ctx("hermes-2"))[4] == ["+14156260101", "+14156260102"]
    assert parse_row(1, _row(), None, _ctx("hermes-1")) == parse_row(
        1, _row(), None, _ctx("hermes-2")
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (("1 Main Street", "Boston", "Mass.", "2116"), ("1 MAIN ST", "BOSTON", "MA", "02116")),
        (("1 MAIN ST.", "boston", "massachusetts", "02116-0001"), ("1 MAIN ST", "BOSTON", "MA", "02116")),
        (("77 Court Street", "Newark", "N.J.", "07102"), ("77 COURT ST", "NEWARK", "NJ", "07102")),
        (("5 Oak Ave #12", "Austin", "Tex.", "78701"), ("5 OAK AVE # 12", "AUSTIN", "TX", "78701")),
        (("9 West Elm Road, Unit B", "Denver", "CO", "80202"), ("9 W ELM RD UNIT B", "DENVER", "CO", "80202")),
    ],
)  # fmt: skip
def test_postal_spellings_become_one_address(
    raw: tuple[str, str, str, str], expected: tuple[str, str, str, str]
) -> None:
    assert postal.normalize_postal(*raw) == (*expected, "US")


def test_the_reader_survives_every_kind_of_broken_record() -> None:
    data = (
        b"\xef\xbb\xbfa,b\r\n"
        b"1,2\r\n"
        b'"multi\r\nline",3\r\n'
        b"caf\xe9,4\r\n"
        b"x" + b"y" * (csvfile.MAX_FIELD_BYTES + 10) + b",5\r\n"
        b"nul\x00,6\r\n"
        b"\r\n"
        b"7,8\n"
    )
    rows = csvfile.records(io.BytesIO(data))
    assert csvfile.split_header(rows) == ["a", "b"]
    got = list(rows)
    assert got[0] == (["1", "2"], None)
    assert got[1] == (["multi\r\nline", "3"], None)
    assert got[2][0] == ["caf\ufffd", "4"] and str(got[2][1]).startswith("invalid_encoding")
    assert got[3][0] == [] and str(got[3][1]).startswith("field_too_large")
    assert got[4] == (["nul", "6"], "nul_byte: a field holds a NUL byte")
    assert got[5] == ([], None)  # an empty line: PARSE rejects it as blank
    assert got[6] == (["7", "8"], None)
    assert [r for r, _ in csvfile.records(io.BytesIO(b"a\r\ncaf\xe9\r\n"), "latin-1")] == [
        ["a"], ["café"]]  # fmt: skip
    with pytest.raises(ValueError):
        csvfile.records(io.BytesIO(b""), "ebcdic")
    with pytest.raises(csvfile.NoHeader):
        csvfile.split_header(csvfile.records(io.BytesIO(b"\r\n\r\n")))


def _reference(raw: str, region: str | None) -> str | None:
    """phonenumbers alone, without Hermes's fast path (and with Hermes's one rule of its
    own: a leading "00" is the international prefix in every region, US included)."""
    text = raw.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    has_cc = text.startswith("+")
    try:
        n = phonenumbers.parse(text, None if has_cc else region)
    except phonenumbers.NumberParseException:
        return None
    if n.extension or not phonenumbers.is_valid_number(n):
        return None
    return phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)


_digits = st.text(alphabet="0123456789", min_size=9, max_size=12)
_written = st.builds(
    lambda d, sep, plus, paren: (
        ("+" if plus else "")
        + (f"({d[:3]}) {d[3:]}" if paren else sep.join([d[:3], d[3:6], d[6:]]))
    ),
    _digits,
    st.sampled_from(["", "-", ".", " ", " - "]),
    st.booleans(),
    st.booleans(),
)


@settings(max_examples=400, deadline=None)
@given(_written, st.sampled_from(["US", "CA", "GB", "DE"]))
def test_the_north_american_fast_path_agrees_with_phonenumbers(raw: str, region: str) -> None:
    try:
        ours: str | None = normalize_phone(raw, region)
    except (InvalidPhone, NeedsRegion):
        ours = None
    assert ours == _reference(raw, region), raw


def test_the_compliance_kinds_read_addresses_senders_and_times() -> None:
    header = ["from", "to", "last_contact", "vertical"]
    cols = resolve_columns(header, None, "contact_history")
    assert (cols.addresses, cols.single["sender"], cols.single["observed_at"]) == ((1,), 0, 2)
    ctx = Context(cols, "US", "2026-01-01T00:00:00+00:00")
    x = parse_row(1, ["(500) 555-0006", "Ann@Example.com", "2026-11-30 10:00", "solar"], None, ctx)
    assert (x[4], x[5], x[15], x[18]) == ([], ["ann@example.com"], "2026-11-30T10:00:00+00:00",
                                          "+15005550006")  # fmt: skip
    assert parse_row(2, ["", "415-626-0101", "", "solar"], None, ctx)[16] == "missing_last_contact"
    # The universe kind does not read "to"-like columns as addresses.
    with pytest.raises(MappingError):
        resolve_columns(["to", "notes"], None)
    assert resolve_columns(["number"], None, "suppression").addresses == (0,)


def test_the_reader_bounds_its_memory_and_survives_undecodable_utf16(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A line longer than MAX_LINE_CHARS is skipped (record_too_large) and the next one
    read; a record of more than MAX_FIELDS fields is refused (too_many_fields); a UTF-16
    file cut inside a character ends with an invalid_encoding record, not an exception."""
    monkeypatch.setattr(csvfile, "MAX_LINE_CHARS", 64)
    monkeypatch.setattr(csvfile, "MAX_FIELDS", 5)
    data = b"a,b\n" + b"1," + b"z" * 200 + b"\n" + b",,,,,,,,\n" + b"3,4\n"
    rows = csvfile.records(io.BytesIO(data))
    assert csvfile.split_header(rows) == ["a", "b"]
    got = list(rows)
    assert got[0][0] == [] and str(got[0][1]).startswith("record_too_large: line 2")
    assert got[1][0] == [] and str(got[1][1]).startswith("too_many_fields")
    assert got[2] == (["3", "4"], None)
    cut = "a,b\r\n1,2\r\n".encode("utf-16") + b"\x41"  # an odd byte at the end
    rows = csvfile.records(io.BytesIO(cut), "utf-16")
    assert csvfile.split_header(rows) == ["a", "b"]
    got = list(rows)
    assert got[0] == (["1", "2"], None)
    assert got[-1][0] == [] and str(got[-1][1]).startswith("invalid_encoding")


def test_confidence_too_small_for_a_real_is_dropped_and_a_crash_is_the_rows_rejection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctx = _ctx(mapping={"confidence": "notes"})
    x = parse_row(1, _row(notes="1e-50"), None, ctx)
    assert x[14] == 1.0 and "confidence '1e-50' out of" in str(x[17])
    assert parse_row(1, _row(notes="nan"), None, ctx)[14] == 1.0
    # Emails are what private.address_key keys (the send path and the compliance stores).
    for bad in ("john@mail_srv.com", "a,b@x.com", "<a@x.com>", "josé@café.fr"):
        assert parse_row(1, _row(**{"E-mail": bad}), None, _ctx())[5] == [], bad

    def boom(*_: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(postal, "normalize_postal", boom)
    x = parse_row(5, _row(), None, _ctx())
    assert x[16:18] == ("parse_error", "RuntimeError: a bug")


class _Counted(io.BytesIO):
    """A stream that remembers the furthest it was read."""

    furthest = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.furthest = max(self.furthest, self.tell())
        return data

    def read1(self, size: int | None = -1) -> bytes:
        data = super().read1(size)
        self.furthest = max(self.furthest, self.tell())
        return data

    def readinto(self, b: Any) -> int:
        n = super().readinto(b)
        self.furthest = max(self.furthest, self.tell())
        return n


def test_a_quoted_field_that_never_ends_is_cut_off_while_it_is_read() -> None:
    """Review of issue 19: a quoted field could span any number of lines, its fields
    piling up, before the field count was checked. The record is counted while it is
    read: past MAX_RECORD_LINES lines it is rejected (record_too_large) without reading
    the rest, and the reading goes on with the next line."""
    tail = b'"a\n",' * 400_000  # 2 MB of one record: 400,000 fields, 400,000 lines
    data = _Counted(b"a,b\n1,2\n" + tail + b"\n3,4\n")
    rows = csvfile.records(data)
    assert csvfile.split_header(rows) == ["a", "b"]
    assert next(rows) == (["1", "2"], None)
    fields, error = next(rows)
    assert fields == [] and str(error).startswith("record_too_large: line ")
    assert "more than 1000 lines" in str(error)
    # Cut off at the limit: about 1,000 lines of 5 bytes (and a read-ahead chunk)
    # were read, not the 2 MB of the record.
    assert data.furthest < 64 * 1024, data.furthest
    # The rest of the file is still read, record by record, each one bounded.
    rest = list(rows)
    assert len(rest) > 300 and all(len(f) <= 2 * csvfile.MAX_RECORD_LINES for f, _ in rest)
    # A stray quote swallows the lines after it into one field: cut off after
    # MAX_RECORD_LINES lines, the rows after those are read again.
    stray = b'a,b\nAda,"Smith\n' + b"x,y\n" * 1500 + b"3,4\n"
    got = list(csvfile.records(io.BytesIO(stray)))
    assert got[1][0] == [] and str(got[1][1]).startswith("record_too_large: line 1001")
    assert got[2:] == [(["x", "y"], None)] * 501 + [(["3", "4"], None)]


def test_a_record_is_cut_off_at_its_character_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csvfile, "MAX_RECORD_CHARS", 100)
    data = b'a,b\n"' + b"x" * 60 + b"\n" + b"y" * 60 + b"\n" + b"z" * 60 + b'",1\n5,6\n'
    rows = csvfile.records(io.BytesIO(data))
    assert csvfile.split_header(rows) == ["a", "b"]
    got = list(rows)
    assert got[0][0] == [] and "longer than 100 characters" in str(got[0][1])
    assert got[-1] == (["5", "6"], None)
