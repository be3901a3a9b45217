"""Masks people's addresses in log lines: logs never carry a full phone number or
email address, nor a message body (bodies are simply never logged).

``mask_address('+14155550123')`` -> ``'+1415***0123'``; ``mask_address('jane@example.com')``
-> ``'j***@example.com'``. ``mask_text`` masks every phone number (a run of 7 or more
digits, formatting allowed) and email address inside a free text -- a provider's error
message ("The 'To' number +14155550123 is not a valid phone number."), a URL's query.
"""

from __future__ import annotations

import re

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# A phone number as written in texts and URLs, not inside a word or an id: a + (or
# %2B) and 7 to 15 digits (spaces, dots or dashes between them); a NANP number with
# its area code in parentheses; or 7 to 15 digits with only dots or dashes between.
_PHONE = re.compile(
    r"(?<![\w%+-])(?:(?:\+|%2B)\d(?:[\s.-]?\d){6,14}|\(\d{3}\)\s?\d{3}[\s.-]?\d{4}|\d(?:[.-]?\d){6,14})(?![\w-])",
    re.IGNORECASE,
)


def _mask_digits(number: str) -> str:
    digits = re.sub(r"\D", "", number.replace("%2B", "+").replace("%2b", "+"))
    plus = "+" if number.startswith(("+", "%2B", "%2b")) else ""
    if len(digits) <= 8:
        return plus + digits[:2] + "***" + digits[-2:]
    return plus + digits[:4] + "***" + digits[-4:]


def mask_address(value: object) -> str:
    """One address (a phone number, an email, a push token), masked; None -> '-'."""
    if value is None:
        return "-"
    text = str(value)
    if "@" in text:
        local, _, domain = text.rpartition("@")
        return (local[:1] or "?") + "***@" + domain
    if re.fullmatch(r"\+?[\d\s().-]{7,}", text):
        return _mask_digits(text)
    return text[:4] + "***" if len(text) > 8 else "***"


def mask_text(text: object) -> str:
    """A free text with every phone number and email address in it masked."""
    out = _EMAIL.sub(lambda m: mask_address(m.group(0)), str(text))
    return _PHONE.sub(lambda m: _mask_digits(m.group(0)), out)
