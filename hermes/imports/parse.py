"""PARSE: a landed row (its fields, in file order) -> one extraction record.

Pure and versioned: the same row, header, mapping and version give the same record,
with no I/O, and each record says which parser version made it (``app.import_extractions.
parser_version``), so that ``POST /v1/imports/{id}/reparse`` with a newer version can
re-run PARSE -> MERGE over the landed rows without a re-upload.

Phones go through the command API's own reader (:func:`hermes.addresses.normalize_phone`,
``phonenumbers``, the tenant's default country for national numbers), postal addresses
through :mod:`hermes.imports.postal`. A value that does not read (a bad phone, a bad
email) is dropped and noted; a row that cannot be read at all is rejected with a
reason (``blank_row``, ``ragged_row``, LAND's reason for a row the CSV reader refused).
MERGE decides the rest (``no_identity_key``).

Versions:
  hermes-1  the first parser.
  hermes-2  also keeps the main number of a phone written with an extension
            (``415-555-0123 x12``): an office line is still the person's number; whether
            it can take an SMS is the send path's question, not the graph's.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hermes.addresses import InvalidPhone, NeedsRegion, normalize_phone
from hermes.imports import postal

DEFAULT_VERSION = "hermes-1"
VERSIONS = ("hermes-1", "hermes-2")


class MappingError(ValueError):
    """The mapping names an unknown field or column, or nothing in the file is usable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# --- columns ----------------------------------------------------------------------

SINGLE_FIELDS = (
    "first_name", "last_name", "full_name", "line1", "line2", "city", "region",
    "postal_code", "country", "external_id", "vertical", "observed_at", "confidence", "sender",
)  # fmt: skip
# "addresses": columns holding a phone or an email (the compliance kinds' "to").
LIST_FIELDS = ("phones", "emails", "addresses")
# Values, not columns: the system the ids are from; a suppression import's list.
LITERAL_FIELDS = ("external_system", "list")
# Import kinds that carry compliance data rather than contacts.
COMPLIANCE_KINDS = ("suppression", "contact_history")
# Field aliases a mapping may use.
_FIELD_ALIASES = {
    "phone": "phones", "email": "emails", "address": "line1", "street": "line1",
    "state": "region", "zip": "postal_code", "name": "full_name",
}  # fmt: skip

_RECOGNISED: dict[str, frozenset[str]] = {
    "first_name": frozenset({"first_name", "firstname", "first", "given_name", "givenname",
                             "fname", "forename"}),
    "last_name": frozenset({"last_name", "lastname", "last", "surname", "family_name",
                            "familyname", "lname"}),
    "full_name": frozenset({"name", "full_name", "fullname", "contact_name", "customer_name"}),
    "line1": frozenset({"address", "street", "address1", "address_1", "street_address",
                        "address_line_1", "address_line1", "addr", "line1", "street1"}),
    "line2": frozenset({"address2", "address_2", "address_line_2", "address_line2", "line2",
                        "unit", "apt"}),
    "city": frozenset({"city", "town", "locality"}),
    "region": frozenset({"state", "province", "region", "st", "state_province"}),
    "postal_code": frozenset({"zip", "zip_code", "zipcode", "postal_code", "postcode", "postal",
                              "zip5"}),
    "country": frozenset({"country", "country_code"}),
    "external_id": frozenset({"external_id", "externalid", "ext_id", "crm_id", "customer_id",
                              "source_id"}),
    "vertical": frozenset({"vertical"}),
    "observed_at": frozenset({"observed_at", "last_seen", "updated_at", "last_contact",
                              "last_contacted", "last_contact_at", "contacted_at"}),
    "sender": frozenset({"from", "sender", "from_number", "from_address"}),
    "confidence": frozenset({"confidence"}),
}  # fmt: skip
_PHONE_HEADER = re.compile(
    r"^(phone|mobile|cell|cellphone|cell_phone|mobile_phone|telephone|tel|home_phone|"
    r"work_phone|phone_number|phonenumber|mobile_number)(_?\d+)?$"
)
_EMAIL_HEADER = re.compile(r"^(email|e_mail|email_address|emailaddress)(_?\d+)?$")
_ADDRESS_HEADER = re.compile(r"^(to|recipient|number|address|phone_or_email|contact)$")
_HEADER_KEY = re.compile(r"[^a-z0-9]+")


def header_key(name: str) -> str:
    """How a header name is recognised: ``"Phone #2"`` -> ``"phone_2"``."""
    return _HEADER_KEY.sub("_", unicodedata.normalize("NFKC", name).strip().lower()).strip("_")


@dataclass(frozen=True)
class Columns:
    """Which field each column index feeds (resolved once per import)."""

    single: dict[str, int] = field(default_factory=dict)
    phones: tuple[int, ...] = ()
    emails: tuple[int, ...] = ()
    external_system: str = "import"
    width: int = 0
    addresses: tuple[int, ...] = ()
    kind: str = "universe"

    def as_json(self, header: Sequence[str]) -> dict[str, Any]:
        out: dict[str, Any] = {f: header[i] for f, i in self.single.items()}
        out["phones"] = [header[i] for i in self.phones]
        out["emails"] = [header[i] for i in self.emails]
        if self.addresses:
            out["addresses"] = [header[i] for i in self.addresses]
        out["external_system"] = self.external_system
        return out


def resolve_columns(
    header: Sequence[str], mapping: Mapping[str, Any] | None, kind: str = "universe"
) -> Columns:
    """The columns of each field: the mapping's (``{"phones": ["Cell", "Home"], "first_name":
    "Given"}``) where it names a field, else the recognised common headers. For the
    compliance kinds, a column named like ``to``/``number``/``address`` holds phones or
    emails."""
    index: dict[str, int] = {}
    for i, name in enumerate(header):
        index.setdefault(name, i)
    mapped: dict[str, Any] = {}
    for raw_key, value in (mapping or {}).items():
        key = _FIELD_ALIASES.get(raw_key, raw_key)
        if key not in SINGLE_FIELDS and key not in LIST_FIELDS and key not in LITERAL_FIELDS:
            raise MappingError("unknown_field", f"The mapping names an unknown field {raw_key!r}.")
        mapped[key] = value

    def column(name: Any, key: str) -> int:
        if not isinstance(name, str):
            raise MappingError("invalid_mapping", f"The mapping of {key!r} must name a column.")
        if name not in index:
            raise MappingError(
                "unknown_column", f"The mapping names {name!r}, not a column of the file."
            )
        return index[name]

    single: dict[str, int] = {}
    for key in SINGLE_FIELDS:
        if key in mapped:
            single[key] = column(mapped[key], key)
            continue
        for i, name in enumerate(header):
            if header_key(name) in _RECOGNISED[key]:
                single[key] = i
                break
    lists: dict[str, tuple[int, ...]] = {}
    compliance = kind in COMPLIANCE_KINDS
    for key, pattern in (("phones", _PHONE_HEADER), ("emails", _EMAIL_HEADER),
                         ("addresses", _ADDRESS_HEADER)):  # fmt: skip
        if key in mapped:
            names = mapped[key] if isinstance(mapped[key], list) else [mapped[key]]
            lists[key] = tuple(column(n, key) for n in names)
        else:
            lists[key] = tuple(
                i for i, n in enumerate(header)
                if pattern.match(header_key(n)) and (compliance or key != "addresses")
            )  # fmt: skip
    system = mapped.get("external_system", "import")
    if "list" in mapped and not isinstance(mapped["list"], str):
        raise MappingError("invalid_mapping", "list must name a suppression list.")
    if not isinstance(system, str) or not system.strip() or len(system) > 64:
        raise MappingError(
            "invalid_mapping", "external_system must be a name of 1 to 64 characters."
        )
    columns = Columns(single, lists["phones"], lists["emails"], system.strip(), len(header),
                      lists["addresses"], kind)  # fmt: skip
    if compliance and not (columns.phones or columns.emails or columns.addresses):
        raise MappingError(
            "no_recognised_columns",
            "No column of the file is a phone, an email or an address: give a mapping.",
        )
    if not compliance and not ({"first_name", "last_name", "full_name", "line1"} & single.keys()
                               or columns.phones or columns.emails):  # fmt: skip
        raise MappingError(
            "no_recognised_columns",
            "No column of the file is a name, phone, email or address: give a mapping.",
        )
    return columns


# --- values -----------------------------------------------------------------------

_SPACES = re.compile(r"\s+")
# private.address_key's rule (db/functions/private/address_hash.sql): an email the
# compliance stores and the send path can key, or none.
_EMAIL = re.compile(
    r'^[^@\s<>(),;:"\[\]]{1,64}@[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$'
)
_EXTENSION = re.compile(r"\s*(?:x|ext\.?|extension|#)\s*\d{1,6}\s*$", re.IGNORECASE)


def clean(text: str | None) -> str | None:
    if text is None:
        return None
    text = _SPACES.sub(" ", unicodedata.normalize("NFKC", text)).strip()
    return text or None


def name_key(first: str | None, last: str | None, full: str | None) -> str | None:
    """The normalized name an identity is keyed on: NFKC, case-folded, single spaces."""
    parts = " ".join(p for p in (first, last) if p) or full
    return parts.casefold() if parts else None


def email(raw: str) -> str | None:
    text = raw.strip()
    if text[:7].lower() == "mailto:":
        text = text[7:].strip()
    text = text.lower()
    return text if len(text) <= 254 and _EMAIL.match(text) else None


@dataclass(frozen=True)
class Context:
    """What parsing a row depends on besides the row: the import's."""

    columns: Columns
    default_country: str | None
    observed_at: str  # ISO 8601, the import's (rows without an observed_at column)
    version: str = DEFAULT_VERSION


Extraction = tuple[Any, ...]
"""(row_number, first_name, last_name, name_norm, phones, emails, line1, city, region,
postal_code, country, external_system, external_id, vertical, confidence, observed_at,
rejected, rejected_detail, sender): app.begin_extractions' staging columns, in order."""


def _rejected(row_number: int, ctx: Context, reason: str, detail: str | None) -> Extraction:
    return (row_number, None, None, None, [], [], None, None, None, None, None, None, None,
            None, 1.0, ctx.observed_at, reason, detail, None)  # fmt: skip


def _phone(raw: str, ctx: Context) -> str:
    try:
        return normalize_phone(raw, ctx.default_country)
    except InvalidPhone:
        if ctx.version == "hermes-1":
            raise
        main = _EXTENSION.sub("", raw)
        if main == raw:
            raise
        return normalize_phone(main, ctx.default_country)


def parse_row(
    row_number: int, fields: Sequence[str], land_error: str | None, ctx: Context
) -> Extraction:
    """One landed row -> its extraction (or its rejection, with a reason). A row the
    parser fails on (a bug, a value nobody foresaw) is rejected ``parse_error``: one
    bad row never fails its batch."""
    try:
        return _parse_row(row_number, fields, land_error, ctx)
    except Exception as exc:  # the row's own failure, reported as its rejection
        return _rejected(row_number, ctx, "parse_error", f"{type(exc).__name__}: {exc}"[:200])


def _parse_row(
    row_number: int, fields: Sequence[str], land_error: str | None, ctx: Context
) -> Extraction:
    if land_error is not None:
        return _rejected(row_number, ctx, land_error.split(":", 1)[0], land_error)
    if not any(f.strip() for f in fields):
        return _rejected(row_number, ctx, "blank_row", None)
    c = ctx.columns
    if len(fields) != c.width:
        return _rejected(row_number, ctx, "ragged_row",
                         f"{len(fields)} fields; the header has {c.width}")  # fmt: skip
    s = c.single

    def get(key: str) -> str | None:
        i = s.get(key)
        return None if i is None else clean(fields[i])

    notes: list[str] = []
    phones: list[str] = []
    for i in c.phones:
        raw = fields[i]
        if raw.strip():
            try:
                phone = _phone(raw, ctx)
            except (InvalidPhone, NeedsRegion) as exc:
                notes.append(f"{i + 1}: phone {raw[:40]!r} dropped ({exc})")
                continue
            if phone not in phones:
                phones.append(phone)
    emails: list[str] = []
    for i in c.addresses:
        raw = fields[i]
        if raw.strip() and "@" not in raw:
            try:
                phone = _phone(raw, ctx)
            except (InvalidPhone, NeedsRegion) as exc:
                notes.append(f"{i + 1}: address {raw[:40]!r} dropped ({exc})")
                continue
            if phone not in phones:
                phones.append(phone)
        elif raw.strip():
            value = email(raw)
            if value is None:
                notes.append(f"{i + 1}: address {raw[:40]!r} dropped")
            elif value not in emails:
                emails.append(value)
    for i in c.emails:
        raw = fields[i]
        if raw.strip():
            value = email(raw)
            if value is None:
                notes.append(f"{i + 1}: email {raw[:40]!r} dropped")
            elif value not in emails:
                emails.append(value)
    first, last, full = get("first_name"), get("last_name"), get("full_name")
    if full and not (first or last):
        first, _, last_part = full.rpartition(" ")
        first, last = (first or None), (last_part or None)
        if first is None:
            first, last = last, None
    line1 = get("line1")
    line2 = get("line2")
    if line1 and line2:
        line1 = f"{line1} {line2}"
    line1, city, region, postal_code, country = postal.normalize_postal(
        line1, get("city"), get("region"), get("postal_code"), get("country"),
        ctx.default_country,
    )  # fmt: skip
    confidence = 1.0
    raw_confidence = get("confidence")
    if raw_confidence is not None:
        try:
            number = float(raw_confidence)
            # (a real holds down to ~1e-38; anything under a millionth is no confidence)
            if 1e-6 <= number <= 1:
                confidence = number
            else:
                notes.append(f"confidence {raw_confidence[:20]!r} out of [0.000001, 1]")
        except ValueError:
            notes.append(f"confidence {raw_confidence[:20]!r} is not a number")
    observed_at = ctx.observed_at
    observed = False
    raw_observed = get("observed_at")
    if raw_observed is not None:
        try:
            when = datetime.fromisoformat(raw_observed)
            observed_at = (when if when.tzinfo else when.replace(tzinfo=UTC)).isoformat()
            observed = True
        except ValueError:
            notes.append(f"observed_at {raw_observed[:40]!r} is not ISO 8601")
    if c.kind == "contact_history" and not observed:
        return _rejected(row_number, ctx, "missing_last_contact",
                         "; ".join(notes) or "no time of last contact")  # fmt: skip
    sender = get("sender")
    if sender is not None:
        try:
            sender = email(sender) if "@" in sender else _phone(sender, ctx)
        except (InvalidPhone, NeedsRegion):
            sender = None
        if sender is None:
            notes.append("the sender is not a phone number or an email")
    return (
        row_number, first, last, name_key(first, last, full), phones, emails, line1, city,
        region, postal_code, country, c.external_system, get("external_id"), get("vertical"),
        confidence, observed_at, None, "; ".join(notes)[:1000] or None, sender,
    )  # fmt: skip
