"""Reading addresses as people type them: one canonical form per phone number and email.

The edge (the command API, and the import parser later) reads what people type with
``phonenumbers`` -- national forms with the tenant's default country, ``tel:`` URIs,
full-width digits, separators -- and hands SQL only E.164. SQL re-validates
(``private.address_key``) and never stores what it cannot key. These functions are
pure: no I/O, no state, the same answer for the same input.
"""

from __future__ import annotations

import unicodedata

import phonenumbers


class NeedsRegion(ValueError):
    """The number has no country code: it can only be read with a default country."""


class InvalidPhone(ValueError):
    """Not a phone number Hermes can send to (unparsable, impossible or invalid)."""


def _has_country_code(raw: str) -> bool:
    # NFKC folds full-width plus signs and digits; "tel:" URIs and "00" prefixes count too.
    text = unicodedata.normalize("NFKC", raw).strip()
    if text.lower().startswith("tel:"):
        text = text[4:].strip()
    return text.startswith("+") or text.startswith("00")


def normalize_phone(raw: str, region: str | None = None) -> str:
    """The E.164 form of ``raw``.

    Without a country code, ``region`` (ISO 3166 alpha-2, the tenant's default country)
    says which country the national number belongs to; without one, raises
    :class:`NeedsRegion`. Raises :class:`InvalidPhone` for anything that is not a valid
    number (``phonenumbers.is_valid_number``)."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidPhone("empty")
    if len(raw) > 64:
        raise InvalidPhone("longer than 64 characters")
    text = unicodedata.normalize("NFKC", raw).strip()
    if text.lower().startswith("tel:"):
        text = text[4:].split(";", 1)[0].strip()  # tel:+1-415-555-0100;ext=1 -> the number
    if text.startswith("00"):
        text = "+" + text[2:]
    has_cc = text.startswith("+")
    if not has_cc and region is None:
        raise NeedsRegion(raw)
    number = _north_american(text, has_cc, region)
    if number is None:
        try:
            number = phonenumbers.parse(text, None if has_cc else region)
        except phonenumbers.NumberParseException as exc:
            raise InvalidPhone(str(exc)) from None
        if number.extension:
            raise InvalidPhone("has an extension")
    # The region's own rules first (the common case, half the cost), then every region's.
    if not (
        (region is not None and phonenumbers.is_valid_number_for_region(number, region))
        or phonenumbers.is_valid_number(number)
    ):
        raise InvalidPhone("not a valid number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# Separators people put in North American numbers: "(415) 555-0123", "415.555.0123".
_NANP_SEPARATORS = str.maketrans("", "", " ()-.")
_NANP_REGIONS = frozenset(phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1])


def _north_american(text: str, has_cc: bool, region: str | None) -> phonenumbers.PhoneNumber | None:
    """The number of a plainly written North American number, without the generic parse
    (most of the cost of a file's phones): digits and separators only, ten digits (or
    eleven with the leading 1), country code +1 or a NANP default region. Anything else
    (letters, extensions, other countries) is left to ``phonenumbers.parse``; validity
    is still ``phonenumbers``' own check either way."""
    digits = text[1:] if has_cc else text
    digits = digits.translate(_NANP_SEPARATORS)
    if not digits.isascii() or not digits.isdigit():
        return None
    if has_cc:
        if len(digits) != 11 or digits[0] != "1":
            return None
    elif region not in _NANP_REGIONS:
        return None
    elif len(digits) == 11 and digits[0] == "1":
        pass
    elif len(digits) != 10:
        return None
    return phonenumbers.PhoneNumber(country_code=1, national_number=int(digits[-10:]))


def looks_like_email(raw: str) -> bool:
    return "@" in raw


def needs_region(raw: object) -> bool:
    """Whether reading ``raw`` as a phone number takes the tenant's default country."""
    return isinstance(raw, str) and not looks_like_email(raw) and not _has_country_code(raw)


def normalize_address(raw: str, region: str | None = None) -> str:
    """An email as typed (SQL trims and lower-cases it), or a phone number in E.164."""
    if looks_like_email(raw):
        return raw
    return normalize_phone(raw, region)
