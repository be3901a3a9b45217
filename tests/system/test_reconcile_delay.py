"""A Twilio call that times out is not reconciled seconds later (issue 19): Twilio may
have created the message and lists it only later, so an early lookup finds nothing and
resends it. The retry waits private.settings reconcile_delay (minutes) first.

Here Twilio (the simulator) answers after 2 s and the worker gives up after 1 s."""

from __future__ import annotations

import time

import httpx

from tests.system.conftest import Stack, module_stack

slow_twilio = module_stack(
    "slow-twilio",
    worker_env={"HERMES_PROVIDER_TIMEOUT": "1"},
    sim_env={"SIM_TWILIO_LATENCY_MS": "2000"},
)


def test_a_twilio_timeout_is_not_reconciled_within_seconds(slow_twilio: Stack) -> None:
    stack = slow_twilio
    token = stack.new_tenant("Slow Carrier Co")["api_key"]["token"]
    with stack.api(token) as c:
        r = c.post("/v1/messages", json={"to": "+14155550191", "body": "slow"})
    assert r.status_code == 201, r.text
    message_id = r.json()["id"]

    def events() -> list[str]:
        return [
            e["event_type"]
            for e in stack.sql(
                "SELECT event_type FROM app.message_events WHERE message_id = %s ORDER BY id",
                (message_id,),
            )
        ]

    deadline = time.monotonic() + 20
    while "send_error" not in events():
        assert time.monotonic() < deadline, events()
        time.sleep(0.1)
    # Seconds later (the old backoff was 1 s, then 2 s): Twilio was not even asked, and
    # nothing was decided or resent.
    watch_until = time.monotonic() + 6
    while time.monotonic() < watch_until:
        seen = events()
        assert not {"reclaimed", "reconciled", "resend", "handed_off"} & set(seen), seen
        assert httpx.get(f"{stack.cfg.sim_url}/_sim/stats").json().get("lists", 0) == 0
        time.sleep(0.2)
    row = stack.sql(
        "SELECT status, reconcile_after > now() + interval '1 minute' AS later"
        "  FROM app.message_attempts WHERE message_id = %s",
        (message_id,),
    )[0]
    assert row == {"status": "claimed", "later": True}, row
    due = stack.sql(
        "SELECT min(execute_after) > now() + interval '1 minute' AS later FROM pgqueuer.pgqueuer "
        "WHERE entrypoint = 'send' AND convert_from(payload, 'UTF8')::jsonb ->> 'attempt_id' = "
        "(SELECT id::text FROM app.message_attempts WHERE message_id = %s)",
        (message_id,),
    )[0]
    assert due["later"] is True, due
