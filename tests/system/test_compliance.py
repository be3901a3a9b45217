"""The compliance core end to end: consent and suppression through the command API,
refusals readable through PostgREST, numbers read as people type them, and nothing
ever reaching the carrier for an ineligible recipient."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from hermes.sqlcall import inbound_url
from tests.system.conftest import Stack


@pytest.fixture(scope="module")
def tenant(stack: Stack) -> dict[str, Any]:
    return stack.new_tenant("Compliance Co")


def _token(tenant: dict[str, Any]) -> str:
    return str(tenant["api_key"]["token"])


def _read(stack: Stack, token: str, path: str, **params: str) -> list[dict[str, Any]]:
    with stack.rest(token) as c:
        r = c.get(path, params=params)
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()
    return rows


def test_an_opt_out_refuses_every_formatting_of_the_number(
    stack: Stack, tenant: dict[str, Any]
) -> None:
    """The issue's contract: POST /v1/consents opts a number out; a message to it in
    national form is answered rejected with the reason opted_out, readable later through
    PostgREST, and never reaches the carrier."""
    token = _token(tenant)
    with stack.api(token) as c:
        r = c.post(
            "/v1/consents",
            json={"address": "+14155550100", "channel": "sms", "kind": "opt_out", "source": "api"},
        )
        assert r.status_code == 201, r.text
        event = r.json()
        assert event["kind"] == "opt_out" and event["address"] == "+14155550100"

        bodies = []
        for to in (
            "+1 (415) 555-0100",
            "(415) 555-0100",
            "tel:+1-415-555-0100",
            "＋１ ４１５ ５５５ ０１００",
        ):
            body = f"hi {uuid.uuid4()}"
            bodies.append(body)
            r = c.post("/v1/messages", json={"to": to, "channel": "sms", "body": body})
            assert r.status_code == 201, r.text
            msg = r.json()
            assert msg["status"] == "rejected", (to, msg)
            assert msg["to"] == "+14155550100"
            assert [x["code"] for x in msg["reasons"]] == ["opted_out"]
            assert msg["error_code"] == "opted_out"

    rows = _read(stack, token, "/messages", id=f"eq.{msg['id']}")
    assert rows[0]["status"] == "rejected"
    assert rows[0]["reasons"][0]["code"] == "opted_out"
    assert rows[0]["reasons"][0]["scope"] == "tenant"
    decisions = _read(stack, token, "/message_decisions", message_id=f"eq.{msg['id']}")
    assert [(d["stage"], d["decision"]) for d in decisions] == [("accept", "rejected")]
    assert decisions[0]["reasons"][0]["code"] == "opted_out"
    assert decisions[0]["rules"]["eligibility"] == 1 and decisions[0]["rules"]["quiet_hour_rules"]
    events = _read(stack, token, "/consent_events", address="eq.+14155550100")
    assert [(e["kind"], e["channel"], e["source"]) for e in events] == [("opt_out", "sms", "api")]
    state = _read(stack, token, "/consent_state", address="eq.+14155550100")
    assert [(s["channel"], s["scope"], s["status"]) for s in state] == [
        ("sms", "tenant", "opted_out")
    ]
    assert not [m for m in stack.carrier_ledger() if m["body"] in bodies]


def test_an_opt_in_lifts_it_and_the_message_is_delivered(
    stack: Stack, tenant: dict[str, Any]
) -> None:
    token = _token(tenant)
    with stack.api(token) as c:
        assert (
            c.post(
                "/v1/consents", json={"address": "(415) 555-0101", "kind": "opt_out"}
            ).status_code
            == 201
        )
        r = c.post("/v1/messages", json={"to": "4155550101", "body": "refused"})
        assert r.json()["status"] == "rejected"
        assert (
            c.post("/v1/consents", json={"address": "+14155550101", "kind": "opt_in"}).status_code
            == 201
        )
        body = f"welcome back {uuid.uuid4()}"
        r = c.post("/v1/messages", json={"to": "415.555.0101", "body": body})
    assert r.status_code == 201 and r.json()["status"] == "queued", r.text
    done = stack.wait_message(token, r.json()["id"], {"delivered", "undelivered", "failed"})
    assert done["status"] == "delivered"
    assert [m["to"] for m in stack.carrier_ledger() if m["body"] == body] == ["+14155550101"]


def test_a_suppression_list_uploaded_as_csv_refuses_its_numbers(
    stack: Stack, tenant: dict[str, Any]
) -> None:
    token = _token(tenant)
    csv = (
        "\ufeffName,Phone\r\nAda,(415) 555-0102\r\nBob,+1 415 555 0103\r\n\r\nEve,not a number\r\n"
    )
    with stack.api(token) as c:
        r = c.post(
            "/v1/suppressions",
            files={"file": ("dnc.csv", csv.encode(), "text/csv")},
            data={"list": "do_not_contact", "reason": "customer's DNC list"},
        )
        assert r.status_code == 200, r.text
        result = r.json()
        assert result["recorded"] == 2
        assert [x["index"] for x in result["refused"]] == [2]
        answers = [
            c.post("/v1/messages", json={"to": to, "body": f"x {uuid.uuid4()}"}).json()
            for to in ("+14155550102", "(415) 555-0103")
        ]
    assert [a["status"] for a in answers] == ["rejected", "rejected"]
    assert answers[0]["reasons"] == [
        {"code": "suppressed", "list": "do_not_contact", "scope": "tenant"}
    ]
    listed = _read(stack, token, "/suppressions", order="address")
    assert [(s["address"], s["list"]) for s in listed] == [
        ("+14155550102", "do_not_contact"),
        ("+14155550103", "do_not_contact"),
    ]
    # JSON works too, and removal lifts it.
    with stack.api(token) as c:
        r = c.post(
            "/v1/suppressions/remove", json={"list": "do_not_contact", "addresses": ["4155550102"]}
        )
        assert r.status_code == 200 and r.json()["recorded"] == 1, r.text
        again = c.post(
            "/v1/messages", json={"to": "+14155550102", "body": f"y {uuid.uuid4()}"}
        ).json()
    assert again["status"] == "queued"


def test_a_suppression_csv_is_counted_while_read_and_stops_at_the_limit(
    stack: Stack, tenant: dict[str, Any]
) -> None:
    """Review of issue 19: the suppression CSV was read whole before its size check.
    Rows are counted while read: past 10,000 addresses the reading stops, 413
    too_many_entries with the limit, and what follows is never read (here a field over
    the reader's bound, which the old code reached and answered 422 invalid_csv)."""
    rows = "".join(f"+1415{n:07d}\r\n" for n in range(10_001))
    data = ("phone\r\n" + rows + "x" * (2 << 20) + "\r\n").encode()
    with stack.api(_token(tenant)) as c:
        r = c.post(
            "/v1/suppressions",
            files={"file": ("big.csv", data, "text/csv")},
            data={"list": "do_not_contact"},
        )
    assert r.status_code == 413, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert (r.json()["code"], r.json()["limit"]) == ("too_many_entries", 10_000)
    listed = _read(stack, _token(tenant), "/suppressions", address="eq.+14150000000")
    assert listed == []


def test_bad_input_is_a_problem_with_a_code(stack: Stack, tenant: dict[str, Any]) -> None:
    token = _token(tenant)
    with stack.api(token) as c:
        cases = [
            ("/v1/consents", {"address": "555-0100x", "kind": "opt_out"}, 422, "invalid_address"),
            ("/v1/consents", {"address": "+14155550100", "kind": "maybe"}, 422, "invalid_kind"),
            (
                "/v1/consents",
                {"address": "+14155550100", "kind": "opt_out", "scope": "global"},
                422,
                "global_scope_forbidden",
            ),
            ("/v1/messages", {"to": "call me", "body": "x"}, 422, "invalid_to"),
            (
                "/v1/messages",
                {"to": "+14155550100", "body": "x", "channel": "email"},
                422,
                "invalid_to",
            ),
            ("/v1/suppressions", {"list": "friends", "addresses": []}, 422, "invalid_list"),
        ]
        for path, payload, status, code in cases:
            r = c.post(path, json=payload)
            assert r.status_code == status, (path, payload, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["code"] == code, (path, payload, r.json())
    # A key without compliance:write may send but not record consent.
    sender = _mint(stack, tenant, ["messages:write"])
    with stack.api(sender) as c:
        r = c.post("/v1/consents", json={"address": "+14155550100", "kind": "opt_in"})
    assert r.status_code == 403 and r.json()["code"] == "insufficient_scope"


def _mint(stack: Stack, tenant: dict[str, Any], scopes: list[str]) -> str:
    with stack.api(_token(tenant)) as c:
        r: httpx.Response = c.post(
            "/v1/api-keys", json={"name": f"k{uuid.uuid4()}", "scopes": scopes}
        )
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def test_a_stop_through_the_carrier_opts_the_number_out(
    stack: Stack, tenant: dict[str, Any]
) -> None:
    """A person replies STOP (the simulator delivers it like Twilio: signed webhook to the
    tenant's inbound URL): the number is opted out, exactly one confirmation goes to
    them, and a later send is rejected with a reason readable through PostgREST."""
    token = _token(tenant)
    person, ours = "+14155550140", "+15005550006"
    url = inbound_url(stack.cfg.callbacks_url, "twilio", tenant["tenant"]["id"])
    r = httpx.post(
        f"{stack.cfg.sim_url}/_sim/inbound",
        json={"from": person, "to": ours, "body": " Stop! ", "url": url},
    )
    assert r.status_code == 202, r.text

    inbound = _wait(lambda: _read(stack, token, "/inbound_messages", **{"from": f"eq.{person}"}))
    assert [(i["keyword"], i["action"]) for i in inbound] == [("STOP", "opt_out")]
    state = _read(stack, token, "/consent_state", address=f"eq.{person}")
    assert [(s["channel"], s["status"]) for s in state] == [("sms", "opted_out")]
    events = _read(stack, token, "/consent_events", address=f"eq.{person}")
    assert [(e["source"], e["evidence"]["keyword"]) for e in events] == [("keyword", "STOP")]
    reply = stack.wait_message(
        token, inbound[0]["reply_message_id"], {"delivered", "undelivered", "failed"}
    )
    assert reply["status"] == "delivered" and reply["category"] == "compliance"
    assert [m["body"] for m in stack.carrier_ledger() if m["to"] == person] == [reply["body"]]

    with stack.api(token) as c:
        later = c.post(
            "/v1/messages", json={"to": "(415) 555-0140", "body": f"offer {uuid.uuid4()}"}
        ).json()
    assert later["status"] == "rejected" and later["reasons"][0]["code"] == "opted_out"
    rows = _read(stack, token, "/messages", id=f"eq.{later['id']}")
    assert rows[0]["reasons"][0]["code"] == "opted_out"
    assert len([m for m in stack.carrier_ledger() if m["to"] == person]) == 1

    # A forged inbound STOP (no valid signature) is refused and changes nothing.
    forged = httpx.post(
        url,
        data={"MessageSid": "SMforged", "From": "+14155550141", "To": ours, "Body": "STOP"},
        headers={"X-Twilio-Signature": "bm9wZQ=="},
    )
    assert forged.status_code == 403 and forged.json()["code"] == "invalid_signature"
    assert _read(stack, token, "/consent_events", address="eq.+14155550141") == []


def _wait(read: Callable[[], list[dict[str, Any]]], timeout: float = 10.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = read()
        if rows:
            return rows
        time.sleep(0.1)
    raise AssertionError("nothing arrived")


def test_an_erased_person_is_forgotten_and_never_messaged_again(
    stack: Stack, tenant: dict[str, Any]
) -> None:
    token = _token(tenant)
    person = "+14155550150"
    body = f"hello Grace {uuid.uuid4()}"
    with stack.api(token) as c:
        sent = c.post("/v1/messages", json={"to": person, "body": body}).json()
        stack.wait_message(token, sent["id"], {"delivered", "undelivered", "failed"})
        r = c.post("/v1/erasures", json={"addresses": ["(415) 555-0150"]})
        assert r.status_code == 200, r.text
        assert r.json()["erased"] == 1 and r.json()["counts"]["messages"] == 1
        later = c.post("/v1/messages", json={"to": person, "body": "are you there?"}).json()
    rows = _read(stack, token, "/messages", id=f"eq.{sent['id']}")
    assert (rows[0]["to"], rows[0]["body"]) == ("[erased]", "[erased]")
    assert _read(stack, token, "/messages", to=f"eq.{person}", status="neq.rejected") == []
    assert later["status"] == "rejected"
    assert {"code": "suppressed", "list": "erasure", "scope": "tenant"} in later["reasons"]
    tombstones = _read(stack, token, "/suppressions", list="eq.erasure")
    assert [t["address"] for t in tombstones] == [None]
