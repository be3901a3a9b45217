"""Property-based tests (hypothesis) of the two readings the cardinal rule depends on:
every way of typing an opted-out number reaches the same canonical address (so it is
refused), and every way of typing a keyword is detected."""

from __future__ import annotations

import random
from typing import Any

import phonenumbers
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

from hermes.addresses import InvalidPhone, NeedsRegion, normalize_phone
from tests.conftest import TEST_POLICY

FULL_WIDTH = str.maketrans("0123456789+", "０１２３４５６７８９＋")

# Valid US numbers: a real area code and exchange, any line number.
AREA_CODES = ["201", "212", "305", "312", "415", "512", "617", "702", "808", "907"]


@st.composite
def us_numbers(draw: st.DrawFn) -> str:
    while True:
        npa = draw(st.sampled_from(AREA_CODES))
        nxx = draw(st.integers(200, 999))
        line = draw(st.integers(0, 9999))
        e164 = f"+1{npa}{nxx}{line:04d}"
        if phonenumbers.is_valid_number(phonenumbers.parse(e164)):
            return e164


def variants(e164: str, rng: random.Random) -> list[str]:
    """Ways people type one US number."""
    npa, nxx, line = e164[2:5], e164[5:8], e164[8:]
    seps = [" ", "-", ".", "", " - "]
    sep = rng.choice(seps)
    return [
        e164,
        f"+1 {npa} {nxx} {line}",
        f"+1 ({npa}) {nxx}-{line}",
        f"({npa}) {nxx}-{line}",
        f"{npa}{sep}{nxx}{sep}{line}",
        f"1 {npa} {nxx} {line}",
        f"tel:+1-{npa}-{nxx}-{line}",
        f"  {npa}.{nxx}.{line}\t",
        e164.translate(FULL_WIDTH),
        f"({npa}) {nxx}-{line}".translate(FULL_WIDTH),
        f"00 1 {npa} {nxx} {line}",
    ]


@given(us_numbers(), st.randoms(use_true_random=False))
@settings(max_examples=200, deadline=None)
def test_every_way_of_typing_a_number_reads_as_its_e164(e164: str, rng: random.Random) -> None:
    for typed in variants(e164, rng):
        assert normalize_phone(typed, "US") == e164, typed


@given(st.text(max_size=20))
@settings(max_examples=300, deadline=None)
def test_whatever_is_typed_is_e164_or_refused(typed: str) -> None:
    try:
        result = normalize_phone(typed, "US")
    except (InvalidPhone, NeedsRegion):
        return
    assert result.startswith("+") and result[1:].isdigit() and 8 <= len(result) <= 16


def test_a_national_number_needs_the_tenants_country() -> None:
    with pytest.raises(NeedsRegion):
        normalize_phone("(415) 555-0100")
    assert normalize_phone("020 7946 0958", "GB") == "+442079460958"
    with pytest.raises(InvalidPhone):
        normalize_phone("+1 415 555 0100 ext. 12", "US")


@pytest.fixture
def tenant(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute(
        "SELECT private.create_tenant(NULL, 'Props', 'test', '+15005550006')"
    ).fetchone()
    assert row is not None
    tenant_id = str(row[0]["tenant"]["id"])
    conn.execute("SELECT private.set_tenant_policy(%s, NULL, %s)", (tenant_id, Jsonb(TEST_POLICY)))
    return tenant_id


@given(us_numbers(), st.randoms(use_true_random=False))
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_every_variant_of_an_opted_out_number_is_refused(
    conn: psycopg.Connection[Any], tenant: str, e164: str, rng: random.Random
) -> None:
    """The number is opted out in one form; a message to it in any form people type is
    refused at acceptance (read as the API reads it, then by SQL)."""
    typed_out = rng.choice(variants(e164, rng))
    conn.execute(
        "SELECT private.record_consents(%s, NULL, %s)",
        (tenant, Jsonb([{"address": normalize_phone(typed_out, "US"), "kind": "opt_out"}])),
    )
    for typed in variants(e164, rng):
        row = conn.execute(
            "SELECT private.submit_message(%s, NULL, %s) #> '{message}'",
            (tenant, Jsonb({"to": normalize_phone(typed, "US"), "body": f"to {typed}"})),
        ).fetchone()
        assert row is not None
        message = row[0]
        assert message["status"] == "rejected", (typed_out, typed, message)
        assert message["reasons"][0]["code"] == "opted_out"


OPT_OUT = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"]
OPT_IN = ["START", "UNSTOP", "YES"]
HELP = ["HELP", "INFO"]
NOISE = [" ", "  ", ".", "!", "-", "_", "\t", "\n", ",", "*"]


@st.composite
def typed_keywords(draw: st.DrawFn) -> tuple[str, str]:
    """A keyword as someone might type it: any case, noise between and around its
    letters, sometimes full width."""
    keyword = draw(st.sampled_from(OPT_OUT + OPT_IN + HELP))
    out = draw(st.sampled_from(["", " ", "  ", '"', "("]))
    for letter in keyword:
        out += letter if draw(st.booleans()) else letter.lower()
        if draw(st.integers(0, 4)) == 0:
            out += draw(st.sampled_from(NOISE))
    out += draw(st.sampled_from(["", "!", ".", "?!", " ", ")", '"', "\n"]))
    if draw(st.integers(0, 5)) == 0:
        out = out.translate(
            str.maketrans(
                "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ"
            )
        )
    return keyword, out


@given(typed_keywords())
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_every_way_of_typing_a_keyword_is_detected(
    conn: psycopg.Connection[Any], typed: tuple[str, str]
) -> None:
    keyword, body = typed
    row = conn.execute("SELECT keyword, action FROM private.detect_keyword(%s)", (body,)).fetchone()
    expected = "opt_out" if keyword in OPT_OUT else "opt_in" if keyword in OPT_IN else "help"
    assert row == (keyword, expected), body


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz ", min_size=1, max_size=40))
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_other_messages_opt_nobody_in(conn: psycopg.Connection[Any], body: str) -> None:
    """Only an exact opt-in keyword opts in; an opt-out word counts only alone or first."""
    row = conn.execute("SELECT keyword, action FROM private.detect_keyword(%s)", (body,)).fetchone()
    assert row is not None
    letters = "".join(c for c in body.upper() if c.isalpha())
    first = body.upper().split()[0] if body.split() else ""
    if letters in OPT_OUT + OPT_IN + HELP:
        assert row[0] == letters
    elif first in OPT_OUT:
        assert row == (first, "opt_out")
    else:
        assert row == (None, None), body
