"""Poison isolation at intake: one caller's bad request never answers another caller.

The API gathers concurrent ``POST /v1/messages`` into one SQL call per key
(api/submit.py). These tests mix good, bad, duplicate-key and unknown-contact requests
from several tenants, submit them at once, and check that every caller gets its own
correct answer, that nothing answers 5xx, and that nothing is accepted (or sent) twice.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from typing import Any

import httpx

from tests.system.conftest import Stack

SEED = 19_2026
MIXES = 200


async def _post(
    client: httpx.AsyncClient, token: str, body: dict[str, Any], key: str | None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return await client.post("/v1/messages", json=body, headers=headers)


def test_the_reported_mix_answers_each_caller_alone(stack: Stack) -> None:
    """The issue's reproduction: six concurrent posts of one key and an unknown contact
    from tenant A, three ordinary sends from tenant B: A gets 422 unknown_contact six
    times, B gets 201 three times (before the fix: 500s for A and for one of B's)."""
    a = stack.new_tenant("PoisonA")["api_key"]["token"]
    b = stack.new_tenant("PoisonB")["api_key"]["token"]
    contact = str(uuid.uuid4())

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=stack.cfg.api_url, timeout=20) as c:
            return await asyncio.gather(
                *(_post(c, a, {"contact_id": contact, "body": "hi"}, "same-key") for _ in range(6)),
                *(
                    _post(c, b, {"to": "+14155550777", "body": f"b {uuid.uuid4()}"}, None)
                    for _ in range(3)
                ),
            )

    answers = asyncio.run(run())
    assert [r.status_code for r in answers[:6]] == [422] * 6, [r.text for r in answers]
    assert {r.json()["code"] for r in answers[:6]} == {"unknown_contact"}
    assert [r.status_code for r in answers[6:]] == [201] * 3, [r.text for r in answers]


def test_batch_with_a_duplicate_key_of_a_bad_item_answers_per_item(stack: Stack) -> None:
    token = stack.new_tenant("PoisonBatch")["api_key"]["token"]
    contact = str(uuid.uuid4())
    with stack.api(token) as c:
        r = c.post(
            "/v1/messages/batch",
            json={
                "messages": [
                    {"to": "+14155550778", "body": f"ok {uuid.uuid4()}"},
                    {"contact_id": contact, "body": "x", "idempotency_key": "k1"},
                    {"contact_id": contact, "body": "x", "idempotency_key": "k1"},
                    {"to": "+14155550779", "body": f"ok {uuid.uuid4()}"},
                ]
            },
        )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [201, 422, 422, 201]
    assert results[2]["problem"]["code"] == "unknown_contact"
    assert r.json()["accepted"] == 2 and r.json()["rejected"] == 2


# --- the property: random mixes ------------------------------------------------------


def _mix(rng: random.Random, tenants: list[str], mix_no: int) -> list[dict[str, Any]]:
    """Requests of one mix, each with the answer it must get: ``expect`` is 'new',
    'keyed' (one answer, the others replaying it), or an error code."""
    out: list[dict[str, Any]] = []
    for _ in range(rng.randint(3, 9)):
        tenant = rng.choice(tenants)
        kind = rng.choice(["good", "good", "bad", "dup", "unknown", "unknown_dup"])
        tag = f"m{mix_no}-{uuid.uuid4().hex[:12]}"
        if kind == "good":
            body = {"to": f"+1415555{rng.randint(1000, 9999)}", "body": f"good {tag}"}
            out.append({"tenant": tenant, "body": body, "key": None, "expect": "new"})
        elif kind == "bad":
            body = rng.choice(
                [
                    {"to": "+14155550100"},  # no body
                    {"to": "not a number", "body": "x"},
                    {"body": "no recipient"},
                    {"to": "+14155550100", "body": "x", "category": "nonsense"},
                ]
            )
            out.append({"tenant": tenant, "body": body, "key": None, "expect": "error"})
        elif kind == "dup":
            # The same key may be used by several tenants: keys are per tenant.
            key = f"k-{tag}"
            body = {"to": f"+1415555{rng.randint(1000, 9999)}", "body": f"dup {tag}"}
            group = [t for t in tenants if rng.random() < 0.5] or [tenant]
            for t in group:
                for _ in range(rng.randint(2, 4)):
                    out.append({"tenant": t, "body": body, "key": key, "expect": "keyed"})
        elif kind == "unknown":
            body = {"contact_id": str(uuid.uuid4()), "body": f"unknown {tag}"}
            out.append({"tenant": tenant, "body": body, "key": None, "expect": "unknown_contact"})
        else:
            key = f"u-{tag}"
            body = {"contact_id": str(uuid.uuid4()), "body": f"unknown {tag}"}
            for _ in range(rng.randint(2, 4)):
                out.append(
                    {"tenant": tenant, "body": body, "key": key, "expect": "unknown_contact"}
                )
    rng.shuffle(out)
    return out


def test_random_mixes_of_tenants_and_poison(stack: Stack) -> None:
    print(f"seed {SEED}, {MIXES} mixes")
    rng = random.Random(SEED)
    tenants = [stack.new_tenant(f"Mix{i}")["api_key"]["token"] for i in range(3)]
    mixes = [_mix(rng, tenants, n) for n in range(MIXES)]

    async def run() -> list[list[httpx.Response]]:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=stack.cfg.api_url, timeout=30, limits=limits) as c:
            answers = []
            for mix in mixes:
                answers.append(
                    await asyncio.gather(*(_post(c, r["tenant"], r["body"], r["key"]) for r in mix))
                )
            return answers

    all_answers = asyncio.run(run())
    accepted: list[str] = []  # bodies of new messages
    for n, (mix, answers) in enumerate(zip(mixes, all_answers, strict=True)):
        keyed: dict[tuple[str, str], list[httpx.Response]] = {}
        for req, r in zip(mix, answers, strict=True):
            where = f"seed {SEED} mix {n}: {req} -> {r.status_code} {r.text}"
            assert r.status_code < 500, where
            if req["expect"] == "new":
                assert r.status_code == 201, where
                assert r.json()["body"] == req["body"]["body"], where
                accepted.append(req["body"]["body"])
            elif req["expect"] == "error":
                assert r.status_code == 422, where
                assert r.headers["content-type"].startswith("application/problem+json"), where
            elif req["expect"] == "unknown_contact":
                assert r.status_code == 422 and r.json()["code"] == "unknown_contact", where
            else:
                assert r.status_code == 201, where
                keyed.setdefault((req["tenant"], req["key"]), []).append(r)
        for (_, key), group in keyed.items():
            # One first answer; the others replay it (201 with Idempotent-Replayed).
            ids = {r.json()["id"] for r in group}
            firsts = [r for r in group if r.headers.get("Idempotent-Replayed") != "true"]
            assert len(firsts) == 1 and len(ids) == 1, f"seed {SEED} mix {n} key {key}: {ids}"
            accepted.append(group[0].json()["body"])

    # Nothing accepted twice: each accepted request is one message (a keyed request
    # used by several tenants is one message of each).
    expected = Counter(accepted)
    rows = stack.sql(
        "SELECT body, count(*) AS n FROM app.messages WHERE body LIKE 'good m%%' OR body LIKE 'dup m%%' "
        "GROUP BY body"
    )
    assert Counter({r["body"]: r["n"] for r in rows}) == expected
    assert not stack.sql("SELECT 1 FROM app.messages WHERE body LIKE 'unknown m%%'"), (
        "an unknown-contact request was accepted"
    )
    # Nothing sent twice: once every message is delivered, each went to the carrier once.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and stack.sql(
        "SELECT 1 FROM app.messages WHERE status NOT IN ('delivered', 'failed', 'rejected') LIMIT 1"
    ):
        time.sleep(0.2)
    sent = Counter(
        m.get("body")
        for m in stack.carrier_ledger()
        if str(m.get("body", "")).startswith(("good m", "dup m"))
    )
    assert sent == expected
