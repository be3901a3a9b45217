"""hermes/logmask.py: log lines never carry a full address (issue 19)."""

from __future__ import annotations

import pytest

from hermes.logmask import mask_address, mask_text


def test_mask_address() -> None:
    assert mask_address("+14155550123") == "+1415***0123"
    assert mask_address("Jane@Example.com") == "J***@Example.com"
    assert mask_address(None) == "-"
    assert "fcm-token-abcdef" not in mask_address("fcm-token-abcdef0123456789")


@pytest.mark.parametrize(
    "text",
    [
        "21211: The 'To' number +14155550123 is not a valid phone number.",
        "/Messages.json?To=%2B14155550123&From=%2B15005550006",
        "To=+14155550123",
        "call (415) 555-0123 now",
        "415-555-0123",
        "415.555.0123",
        "4155550123",
        "+1 415 555 0123.",
        "mailto:jane.doe@example.com,",
    ],
)
def test_mask_text_hides_every_form(text: str) -> None:
    masked = mask_text(text)
    for needle in ("4155550123", "555-0123", "555.0123", "555 0123", "jane.doe@"):
        assert needle not in masked.replace("***", "#"), (text, masked)


def test_mask_text_keeps_ids_and_codes() -> None:
    line = "SM0123456789abcdef attempt 0190a000-0000-7000-8000-00000000e1a5 code 30008 21211"
    assert mask_text(line) == line
