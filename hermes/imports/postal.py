"""Postal addresses as files spell them, to one canonical form (USPS Publication 28 style).

``normalize_postal("12 Main Street, Apt 4", "san francisco", "Calif.", "94107-1234")``
gives ``("12 MAIN ST APT 4", "SAN FRANCISCO", "CA", "94107", "US")``: upper case, single
spaces, no punctuation, the standard street suffix, directional and unit abbreviations,
US states and Canadian provinces by their two-letter codes, ZIP+4 cut to the ZIP and
ZIPs that lost their leading zeros in a spreadsheet padded back. Pure: the same answer
for the same input. What this does not know (another country's conventions, a
misspelled street) it leaves as written, upper-cased: under-merging is the safe side.
"""

from __future__ import annotations

import re
import unicodedata

# Street suffixes (USPS C1, the common ones): every spelling -> the standard abbreviation.
_SUFFIXES = {
    "ALLEY": "ALY", "ALLY": "ALY", "ALY": "ALY",
    "AVENUE": "AVE", "AVE": "AVE", "AV": "AVE", "AVEN": "AVE", "AVNUE": "AVE",
    "BOULEVARD": "BLVD", "BLVD": "BLVD", "BOUL": "BLVD", "BOULV": "BLVD",
    "CIRCLE": "CIR", "CIR": "CIR", "CIRC": "CIR",
    "COURT": "CT", "CT": "CT", "CRT": "CT",
    "DRIVE": "DR", "DR": "DR", "DRV": "DR", "DRIV": "DR",
    "EXPRESSWAY": "EXPY", "EXPY": "EXPY",
    "FREEWAY": "FWY", "FWY": "FWY",
    "HIGHWAY": "HWY", "HWY": "HWY", "HIWAY": "HWY",
    "LANE": "LN", "LN": "LN",
    "PARKWAY": "PKWY", "PKWY": "PKWY", "PKY": "PKWY",
    "PLACE": "PL", "PL": "PL",
    "PLAZA": "PLZ", "PLZ": "PLZ",
    "ROAD": "RD", "RD": "RD",
    "SQUARE": "SQ", "SQ": "SQ",
    "STREET": "ST", "ST": "ST", "STR": "ST", "STRT": "ST",
    "TERRACE": "TER", "TER": "TER", "TERR": "TER",
    "TRAIL": "TRL", "TRL": "TRL",
    "WAY": "WAY", "WY": "WAY",
}  # fmt: skip
_DIRECTIONALS = {
    "NORTH": "N", "SOUTH": "S", "EAST": "E", "WEST": "W",
    "NORTHEAST": "NE", "NORTHWEST": "NW", "SOUTHEAST": "SE", "SOUTHWEST": "SW",
}  # fmt: skip
_UNITS = {
    "APARTMENT": "APT", "APT": "APT", "SUITE": "STE", "STE": "STE", "UNIT": "UNIT",
    "BUILDING": "BLDG", "BLDG": "BLDG", "FLOOR": "FL", "FL": "FL", "ROOM": "RM", "RM": "RM",
    "#": "#",
}  # fmt: skip

_US_STATES = {
    "AL": "ALABAMA", "AK": "ALASKA", "AZ": "ARIZONA", "AR": "ARKANSAS", "CA": "CALIFORNIA",
    "CO": "COLORADO", "CT": "CONNECTICUT", "DE": "DELAWARE", "DC": "DISTRICT OF COLUMBIA",
    "FL": "FLORIDA", "GA": "GEORGIA", "HI": "HAWAII", "ID": "IDAHO", "IL": "ILLINOIS",
    "IN": "INDIANA", "IA": "IOWA", "KS": "KANSAS", "KY": "KENTUCKY", "LA": "LOUISIANA",
    "ME": "MAINE", "MD": "MARYLAND", "MA": "MASSACHUSETTS", "MI": "MICHIGAN",
    "MN": "MINNESOTA", "MS": "MISSISSIPPI", "MO": "MISSOURI", "MT": "MONTANA",
    "NE": "NEBRASKA", "NV": "NEVADA", "NH": "NEW HAMPSHIRE", "NJ": "NEW JERSEY",
    "NM": "NEW MEXICO", "NY": "NEW YORK", "NC": "NORTH CAROLINA", "ND": "NORTH DAKOTA",
    "OH": "OHIO", "OK": "OKLAHOMA", "OR": "OREGON", "PA": "PENNSYLVANIA",
    "RI": "RHODE ISLAND", "SC": "SOUTH CAROLINA", "SD": "SOUTH DAKOTA", "TN": "TENNESSEE",
    "TX": "TEXAS", "UT": "UTAH", "VT": "VERMONT", "VA": "VIRGINIA", "WA": "WASHINGTON",
    "WV": "WEST VIRGINIA", "WI": "WISCONSIN", "WY": "WYOMING", "PR": "PUERTO RICO",
    "GU": "GUAM", "VI": "VIRGIN ISLANDS", "AS": "AMERICAN SAMOA", "MP": "NORTHERN MARIANA ISLANDS",
}  # fmt: skip
# Traditional (AP / GPO) abbreviations still common in files.
_US_STATE_ABBREVIATIONS = {
    "ALA": "AL", "ARIZ": "AZ", "ARK": "AR", "CALIF": "CA", "CAL": "CA", "COLO": "CO",
    "CONN": "CT", "DEL": "DE", "FLA": "FL", "ILL": "IL", "IND": "IN", "KAN": "KS",
    "KANS": "KS", "MASS": "MA", "MICH": "MI", "MINN": "MN", "MISS": "MS", "MONT": "MT",
    "NEB": "NE", "NEBR": "NE", "NEV": "NV", "OKLA": "OK", "ORE": "OR", "PENN": "PA",
    "PENNA": "PA", "TENN": "TN", "TEX": "TX", "WASH": "WA", "WIS": "WI", "WISC": "WI",
    "WYO": "WY",
}  # fmt: skip
_CA_PROVINCES = {
    "AB": "ALBERTA", "BC": "BRITISH COLUMBIA", "MB": "MANITOBA", "NB": "NEW BRUNSWICK",
    "NL": "NEWFOUNDLAND AND LABRADOR", "NS": "NOVA SCOTIA", "NT": "NORTHWEST TERRITORIES",
    "NU": "NUNAVUT", "ON": "ONTARIO", "PE": "PRINCE EDWARD ISLAND", "QC": "QUEBEC",
    "SK": "SASKATCHEWAN", "YT": "YUKON",
}  # fmt: skip

_REGIONS: dict[str, dict[str, str]] = {"US": {}, "CA": {}}  # spelling -> code, per country
for _code, _name in _US_STATES.items():
    _REGIONS["US"][_code] = _REGIONS["US"][_name] = _code
_REGIONS["US"].update(_US_STATE_ABBREVIATIONS)
for _code, _name in _CA_PROVINCES.items():
    _REGIONS["CA"][_code] = _REGIONS["CA"][_name] = _code

_COUNTRIES = {
    "US": "US", "USA": "US", "UNITED STATES": "US", "UNITED STATES OF AMERICA": "US",
    "CA": "CA", "CAN": "CA", "CANADA": "CA",
    "GB": "GB", "UK": "GB", "UNITED KINGDOM": "GB", "GREAT BRITAIN": "GB",
}  # fmt: skip

_PUNCTUATION = re.compile(r"[.,;:]+")
_SPACES = re.compile(r"\s+")
_UNIT_NUMBER = re.compile(r"#\s*(\w+)")
_ZIP = re.compile(r"^(\d{3,5})(?:-?\d{4})?$")
_CANADIAN_POSTAL = re.compile(r"^([A-Z]\d[A-Z])\s*(\d[A-Z]\d)$")


def _upper(text: str | None) -> str:
    if not text:
        return ""
    return (
        _SPACES.sub(" ", _PUNCTUATION.sub(" ", unicodedata.normalize("NFKC", text))).strip().upper()
    )


def street_line(raw: str | None) -> str | None:
    """``"12 north Main Street, Apt. 4"`` -> ``"12 N MAIN ST APT 4"``."""
    text = _upper(raw)
    if not text:
        return None
    text = _UNIT_NUMBER.sub(r"# \1", text)
    words = text.split(" ")
    out: list[str] = []
    in_unit = False
    for i, word in enumerate(words):
        if in_unit:
            out.append(word)
            continue
        if word in _UNITS and i > 0:
            out.append(_UNITS[word])
            in_unit = True
            continue
        # A suffix is a word after the street name (not the house number, not the first
        # word of the name: "Court Street" keeps its "COURT").
        nxt = words[i + 1] if i + 1 < len(words) else None
        if i >= 2 and word in _SUFFIXES and (nxt is None or nxt in _UNITS or nxt in _DIRECTIONALS):
            out.append(_SUFFIXES[word])
        elif word in _DIRECTIONALS and (i == 1 or nxt is None or nxt in _UNITS):
            out.append(_DIRECTIONALS[word])
        else:
            out.append(word)
    return " ".join(out)


def country(raw: str | None, default: str | None) -> str | None:
    text = _upper(raw)
    if not text:
        return default
    return _COUNTRIES.get(text, text)


def region(raw: str | None, country_code: str | None) -> str | None:
    """A state or province by its code (``"Calif."`` -> ``"CA"``); else as written."""
    text = _upper(raw)
    if not text:
        return None
    codes = _REGIONS.get(country_code or "", {})
    # "N.Y." reads as "N Y": try it without the spaces too.
    return codes.get(text) or codes.get(text.replace(" ", "")) or text


def postal_code(raw: str | None, country_code: str | None) -> str | None:
    """US: the five-digit ZIP (ZIP+4 cut, lost leading zeros back); Canada: ``A1A 1A1``."""
    text = _upper(raw).replace(" ", "") if country_code in ("US", "CA") else _upper(raw)
    if not text:
        return None
    if country_code == "US":
        m = _ZIP.match(text)
        return m.group(1).zfill(5) if m else text
    if country_code == "CA":
        m = _CANADIAN_POSTAL.match(text)
        return f"{m.group(1)} {m.group(2)}" if m else text
    return text


def normalize_postal(
    line1: str | None,
    city: str | None,
    region_raw: str | None,
    postal: str | None,
    country_raw: str | None = None,
    default_country: str | None = "US",
) -> tuple[str | None, str | None, str | None, str | None, str | None]:
    """(line1, city, region, postal code, country), each canonical or None when empty."""
    cc = country(country_raw, default_country)
    return (
        street_line(line1),
        _upper(city) or None,
        region(region_raw, cc),
        postal_code(postal, cc),
        cc,
    )
