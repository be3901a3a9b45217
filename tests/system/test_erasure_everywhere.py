"""Erasure reaches everything (issue 19, finding 4): after ``POST /v1/erasures``, no
text, varchar, char, json, jsonb or bytea column of any table of the database -- found
from the catalog, so a new table is covered without touching this test -- holds the
erased address in any of its forms, nor the bodies sent to it; nor does any process's
log.

The person's history covers what a real one would leave behind: a delivered SMS (with
an Idempotency-Key), an inbound message, a consent with evidence, a message to Twilio's
never-final number erased while in flight and then a late receipt for it, two cascades
whose later email step went to the erased address (one delivered by that step, one
delivered by the SMS step before it), a marketing message still waiting for quiet hours
to end (its job pending), and a contact file that held the number and an email. The
bodies are unique to this run (a uuid in each): a hit is a leak.

Where the provider can delete its copy (Twilio's Message DELETE), the erasure enqueues
the deletion: the simulator forgets the erased person's messages.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
from psycopg.types.json import Jsonb

from hermes.sqlcall import inbound_url
from simulators.twilio.app import compute_signature
from tests.conftest import TEST_POLICY
from tests.system.conftest import Stack, module_stack

NEVER_FINAL = "+15005550013"  # the Twilio simulator's number: sent, never a final status
FAILS = "+15005550012"  # the Twilio simulator's number: failed 30008
INVALID = "+15005550001"  # the Twilio simulator's number: refused 21211, quoting it


stack = module_stack("erasure", workers=1, import_workers=1, ses=True)


def _wait(what: str, probe: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"{what}: not after {timeout}s (last: {last!r})")


def phone_forms(e164: str) -> list[str]:
    """A NANP number in the forms people and providers write it."""
    assert e164.startswith("+1") and len(e164) == 12
    n = e164[2:]
    area, exchange, line = n[:3], n[3:6], n[6:]
    return [
        e164,
        f"({area}) {exchange}-{line}",
        f"{area}-{exchange}-{line}",
        f"{area} {exchange} {line}",
        f"{area}.{exchange}.{line}",
        n,
        "1" + n,
    ]


def leaks(stack: Stack, needles: list[str]) -> list[str]:
    """Every (schema.table.column, needle) where a needle occurs: every text-like, json,
    jsonb and bytea column (and arrays of them) of every table and materialized view of
    every schema but the catalogs', found in pg_attribute. Partitions are searched
    directly (relkind r). Case-insensitive; bytea as its escaped text and as raw bytes."""
    low = sorted({n.lower() for n in needles})
    columns = stack.sql(
        """
        SELECT n.nspname AS schema, c.relname AS rel, a.attname AS col,
               CASE WHEN t.typname = 'bytea' THEN 'bytea' ELSE 'text' END AS kind
          FROM pg_attribute a
          JOIN pg_class c ON c.oid = a.attrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
          JOIN pg_type t ON t.oid = a.atttypid
          LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'
         WHERE c.relkind IN ('r', 'm')
           AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'tap', 'pg_toast')
           AND n.nspname NOT LIKE 'pg\\_temp%%' AND n.nspname NOT LIKE 'pg\\_toast%%'
           AND a.attnum > 0 AND NOT a.attisdropped
           AND (t.typname IN ('text', 'varchar', 'bpchar', 'json', 'jsonb', 'bytea', 'name', 'citext')
                OR e.typname IN ('text', 'varchar', 'bpchar', 'json', 'jsonb', 'bytea', 'citext'))
         ORDER BY 1, 2, 3
        """
    )
    assert len(columns) > 100, columns  # the catalog query found the schema
    assert {(c["schema"], c["rel"]) for c in columns} >= {
        ("pgqueuer", "pgqueuer"),
        ("app", "file_rows"),
    }
    found: list[str] = []
    for c in columns:
        ident = f'"{c["schema"]}"."{c["rel"]}"'
        col = f'"{c["col"]}"'
        if c["kind"] == "bytea":
            cond = (
                f"strpos(lower(encode({col}, 'escape')), n) > 0"
                f" OR position(convert_to(n, 'UTF8') IN {col}) > 0"
            )
        else:
            cond = f"strpos(lower({col}::text), n) > 0"
        hits = stack.sql(
            f"SELECT DISTINCT n FROM {ident}, unnest(%s::text[]) n WHERE {col} IS NOT NULL AND ({cond})",
            (low,),
        )
        found += [f"{c['schema']}.{c['rel']}.{c['col']}: {h['n']}" for h in hits]
    return found


def test_erasure_leaves_nothing_anywhere(stack: Stack) -> None:
    run = uuid.uuid4().hex
    rng = random.Random(run)
    person = f"+1415555{rng.randrange(2000, 9999):04d}"  # the delivered SMS, inbound, import
    other = f"+1415555{rng.randrange(1000, 1999):04d}"  # someone else (not erased)
    email = f"Erase.{run[:10]}@Example.com"  # a cascade's later step
    import_email = f"ada.{run[:10]}@example.org"  # only in the contact file
    bodies = {
        k: f"{k} {uuid.uuid4()}"
        for k in (
            "plain",
            "inbound",
            "evidence",
            "inflight",
            "cascade_a",
            "cascade_b",
            "cascade_b_sms",
            "subject",
            "quiet",
            "refused",
        )
    }
    tenant = stack.new_tenant("Forget Me Co")
    token = tenant["api_key"]["token"]
    tid = tenant["tenant"]["id"]
    api = stack.api(token)

    def post(payload: dict[str, Any], **headers: str) -> dict[str, Any]:
        r = api.post("/v1/messages", json=payload, headers=headers)
        assert r.status_code == 201, r.text
        return dict(r.json())

    # 1. A delivered SMS (under an Idempotency-Key: its answer is stored for replays).
    plain = post({"to": person, "body": bodies["plain"]}, **{"Idempotency-Key": f"k-{run}"})
    # 2. A message to the never-final number: handed off, 'sent', no final receipt.
    inflight = post({"to": NEVER_FINAL, "body": bodies["inflight"]})
    # 3. Cascades whose later step is an email to the erased address: (a) the SMS fails,
    #    the email delivers; (b) the SMS delivers, the email step is canceled.
    cascade_a = post(
        {
            "channels": [
                {"channel": "sms", "to": FAILS, "body": bodies["cascade_a"]},
                {
                    "channel": "email",
                    "to": email,
                    "subject": bodies["subject"],
                    "body": bodies["cascade_a"],
                },
            ]
        }
    )
    cascade_b = post(
        {
            "channels": [
                {"channel": "sms", "to": other, "body": bodies["cascade_b_sms"]},
                {
                    "channel": "email",
                    "to": email,
                    "subject": bodies["subject"],
                    "body": bodies["cascade_b"],
                },
            ]
        }
    )
    # 3b. A provider refusal whose error text quotes the number (Twilio 21211).
    refused = post({"to": INVALID, "body": bodies["refused"]})
    # 4. They wrote to us, and we hold their consent with evidence.
    url = inbound_url(stack.cfg.callbacks_url, "twilio", tid)
    r = httpx.post(
        f"{stack.cfg.sim_url}/_sim/inbound",
        json={"from": person, "to": "+15005550006", "body": bodies["inbound"], "url": url},
    )
    assert r.status_code == 202, r.text
    r = api.post(
        "/v1/consents",
        json={
            "address": person,
            "kind": "opt_in",
            "channel": "sms",
            "source": "api",
            "evidence": {"note": bodies["evidence"], "number": person},
        },
    )
    assert r.status_code == 201, r.text
    # 5. A contact file that held the number (national form) and an email.
    national = phone_forms(person)[1]
    csv = (
        "first_name,last_name,phone,email\n"
        f'Ada,Lovelace,"{national}",{import_email}\n'
        f'Bob,Builder,"{phone_forms(other)[1]}",bob.{run[:6]}@example.org\n'
    ).encode()
    r = api.post("/v1/imports", files={"file": ("c.csv", csv, "text/csv")}, timeout=60)
    assert r.status_code == 202, r.text
    import_id = r.json()["id"]

    # 6. Another tenant's marketing message, waiting for quiet hours to end: its job pending.
    quiet = stack.new_tenant("Quiet Co")
    la = datetime.now(ZoneInfo("America/Los_Angeles"))
    start = 15 if la.hour < 14 else 9
    stack.sql(
        "SELECT private.set_tenant_policy(%s, NULL, %s)",
        (
            quiet["tenant"]["id"],
            Jsonb(
                TEST_POLICY
                | {
                    "default_category": "marketing",
                    "quiet_start": f"{start}:00",
                    "quiet_end": f"{start + 1}:00",
                }
            ),
        ),
    )
    with stack.api(quiet["api_key"]["token"]) as qc:
        r = qc.post("/v1/messages", json={"to": person, "body": bodies["quiet"]})
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "scheduled", r.json()

    for m in (plain, cascade_a, cascade_b):
        stack.wait_message(token, m["id"], {"delivered"}, timeout=40)
    stack.wait_message(token, inflight["id"], {"sent"})
    failed = stack.wait_message(token, refused["id"], {"failed"})
    assert INVALID in (failed["error_message"] or ""), failed  # the text quotes it
    _wait(
        "the import",
        lambda: api.get(f"/v1/imports/{import_id}").json()["status"] in ("completed", "failed"),
        60,
    )
    _wait(
        "the inbound message",
        lambda: stack.sql("SELECT 1 FROM app.inbound_messages WHERE tenant_id = %s", (tid,)),
    )
    attempts = {
        a["message_id"]: a
        for a in stack.sql(
            "SELECT message_id::text, id::text, provider_message_id, status, attempt_no"
            "  FROM app.message_attempts WHERE tenant_id = %s AND to_address = ANY(%s)",
            (tid, [person, NEVER_FINAL, email.lower()]),
        )
    }
    sids = [attempts[m["id"]]["provider_message_id"] for m in (plain, inflight)]
    sim = f"{stack.cfg.sim_url}/2010-04-01/Accounts/{stack.cfg.twilio_account_sid}/Messages"
    auth = (stack.cfg.twilio_account_sid, stack.cfg.twilio_auth_token)
    assert all(httpx.get(f"{sim}/{sid}.json", auth=auth).status_code == 200 for sid in sids)

    # The erasure: the SMS person and the in-flight number by this tenant, the email in
    # another case; the quiet tenant erases the person too.
    r = api.post(
        "/v1/erasures",
        json={"addresses": [national, NEVER_FINAL, email.upper(), import_email, INVALID]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["erased"] == 5, r.json()
    with stack.api(quiet["api_key"]["token"]) as qc:
        r = qc.post("/v1/erasures", json={"addresses": [person]})
    assert r.status_code == 200 and r.json()["erased"] == 1, r.text

    # A late receipt for the in-flight message, signed like Twilio's: it must not bring
    # the erased number or body back.
    att = attempts[inflight["id"]]
    callback = f"{stack.cfg.callbacks_url}/v1/webhooks/twilio/status/{att['id']}"
    form = {
        "MessageSid": att["provider_message_id"],
        "SmsSid": att["provider_message_id"],
        "MessageStatus": "delivered",
        "AccountSid": stack.cfg.twilio_account_sid,
        "To": NEVER_FINAL,
        "From": "+15005550006",
        "ApiVersion": "2010-04-01",
    }
    sig = compute_signature(stack.cfg.twilio_auth_token, callback, form)
    r = httpx.post(
        stack.cfg.callbacks_url + urlsplit(callback).path,
        data=form,
        headers={"X-Twilio-Signature": sig},
    )
    assert r.status_code in (200, 204), r.text
    _wait(
        "the late receipt applied",
        lambda: stack.sql(
            "SELECT 1 FROM app.messages WHERE id = %s AND status = 'delivered'", (inflight["id"],)
        ),
    )

    # The provider's copies go too (Twilio's Message DELETE, through a job).
    problems: list[str] = []
    try:
        _wait(
            "Twilio's copies deleted",
            lambda: all(
                httpx.get(f"{sim}/{sid}.json", auth=auth).status_code == 404 for sid in sids
            ),
            20,
        )
    except AssertionError as exc:
        problems.append(str(exc))
    if any(m["sid"] in sids for m in stack.carrier_ledger()):
        problems.append("the simulator's ledger still holds the erased messages")

    # Through the read API, the attempts name no one.
    with stack.rest(token) as rc:
        r = rc.get("/message_attempts", params={"message_id": f"eq.{inflight['id']}"})
    assert r.status_code == 200, r.text
    if [a["to"] for a in r.json()] != ["[erased]"]:
        problems.append(f"api.message_attempts: {[a['to'] for a in r.json()]}")

    needles = [
        *phone_forms(person),
        *phone_forms(NEVER_FINAL),
        *phone_forms(INVALID),
        email,
        import_email,
        *bodies.values(),
    ]
    needles.remove(bodies["cascade_b_sms"])  # sent to someone else: may stay
    problems += leaks(stack, needles)

    # No process logged a full address or a body.
    lines = stack.log_path.read_text().splitlines()
    for n in needles:
        hits = [line for line in lines if n.lower() in line.lower()]
        problems += [f"stack log: {n}: {line[:300]}" for line in hits[:3]]
    api.close()
    assert problems == [], "\n".join(problems)
