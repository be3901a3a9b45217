"""The phone prefix data in SQL is what phonenumbers says (the migration is generated)."""

from __future__ import annotations

from pathlib import Path

from hermes.phone_data import render, rollback

MIGRATIONS = Path(__file__).resolve().parents[1] / "db" / "migrations"


def test_the_migration_is_the_generator_output() -> None:
    # A phonenumbers upgrade changes render(): generate a new migration then.
    assert (MIGRATIONS / "0011.phone-zones.sql").read_text() == render()
    assert (MIGRATIONS / "0011.phone-zones.rollback.sql").read_text() == rollback()


def test_north_american_area_codes_name_their_state() -> None:
    text = render()
    for line in (
        "('1305', 'US', 'FL')",
        "('1415', 'US', 'CA')",
        "('1214', 'US', 'TX')",
        "('1416', 'CA', 'ON')",
    ):
        assert line in text
    assert "('1415', ARRAY['America/Los_Angeles'])" in text
