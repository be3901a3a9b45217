"""Lost receipts are recovered, not waited out: the carrier drops status callbacks
(SIM_TWILIO_CALLBACK_LOSS_RATE), and the worker looks overdue hand-offs up by their
provider id (messages(sid).fetch()) and applies the answer through the receipt inbox."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Cluster
from tests.system.conftest import Stack, start_stack, stop_stack


@pytest.fixture(scope="module")
def lossy_stack(
    cluster: Cluster,
    make_db: Callable[[], str],
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[Stack]:
    s = start_stack(
        cluster,
        make_db,
        tmp_path_factory.mktemp("lossy"),
        workers=1,
        worker_env={"HERMES_RECEIPT_LOOKUP_POLL": "0.5"},
        # Every callback is lost: only lookups can finish a message.
        sim_env={"SIM_TWILIO_CALLBACK_LOSS_RATE": "1.0", "SIM_TWILIO_RECEIPT_DELAY_MS": "20"},
    )
    # Production looks a hand-off up after 5 minutes without a final receipt.
    s.sql("UPDATE private.settings SET value = '2 seconds' WHERE key = 'receipt_lookup_after'")
    s.sql("UPDATE private.settings SET value = '2 seconds' WHERE key = 'receipt_lookup_every'")
    yield s
    stop_stack(s, request)


def _sim_stats(stack: Stack) -> dict[str, Any]:
    stats: dict[str, Any] = httpx.get(f"{stack.cfg.sim_url}/_sim/stats").json()
    return stats


def test_final_receipt_never_comes_and_the_lookup_finishes_the_message(
    lossy_stack: Stack,
) -> None:
    stack = lossy_stack
    token = stack.new_tenant("Lossy")["api_key"]["token"]
    tag = f"lossy {uuid.uuid4().hex[:8]}"
    with stack.api(token) as c:
        ok = c.post("/v1/messages", json={"to": "+14155550142", "body": f"{tag} ok"}).json()
        bad = c.post("/v1/messages", json={"to": "+15005550010", "body": f"{tag} bad"}).json()

    # Handed off (the worker recorded it), then nothing: every callback is dropped.
    deadline = time.monotonic() + 15
    while (
        stack.sql("SELECT status FROM app.messages WHERE id = %s", (ok["id"],))[0]["status"]
        != "sent"
    ):
        assert time.monotonic() < deadline, "never handed off"
        time.sleep(0.05)
    stats = _sim_stats(stack)
    assert stats["callbacks_sent"] == 0

    done = stack.wait_message(token, ok["id"], {"delivered", "undelivered", "failed"}, timeout=30)
    assert done["status"] == "delivered"
    failed = stack.wait_message(token, bad["id"], {"delivered", "undelivered", "failed"}, 30)
    assert (failed["status"], failed["error_code"]) == ("undelivered", "twilio:30003")

    assert _sim_stats(stack)["fetches"] >= 2
    assert _sim_stats(stack)["callbacks_lost"] >= 4
    # The final status came in as a lookup receipt, applied like a callback.
    rows = stack.sql(
        "SELECT r.source, r.provider_status FROM app.receipts r JOIN app.message_attempts a"
        "    ON a.id = r.attempt_id AND a.message_created_at = r.message_created_at"
        " WHERE a.message_id = %s ORDER BY r.id",
        (ok["id"],),
    )
    assert ("lookup", "delivered") in [(r["source"], r["provider_status"]) for r in rows]
    assert all(r["source"] != "callback" for r in rows)
    attempt = stack.sql(
        "SELECT status, lookup_count FROM app.message_attempts WHERE message_id = %s", (ok["id"],)
    )[0]
    assert attempt["status"] == "delivered" and attempt["lookup_count"] >= 1
    # Each sent once.
    creates = [m for m in stack.carrier_ledger() if m["body"].startswith(tag)]
    assert len(creates) == 2
