"""Poison isolation in the worker: one attempt that breaks its claim batch's SQL (a
fault injected with a trigger that raises for one recipient, standing for any bug a
row can trigger) fails only its own job. The other attempts of the batch -- also
other tenants' -- are sent; the poison's job is held and replaced by the maintenance
sweep, and its fifth failure ends it (job_failed) instead of a requeue forever."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx

from tests.system.conftest import Stack

POISON = "+14155550666"


def _wait(predicate: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_poison_attempt_fails_only_itself(stack: Stack) -> None:
    a = stack.new_tenant("SendPoisonA")["api_key"]["token"]
    b = stack.new_tenant("SendPoisonB")["api_key"]["token"]
    stack.sql(
        """
        CREATE FUNCTION public.poison() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.status = 'claimed' THEN RAISE EXCEPTION 'poison attempt'; END IF;
          RETURN NEW;
        END $$;
        CREATE TRIGGER poison BEFORE UPDATE ON app.message_attempts FOR EACH ROW
          WHEN (NEW.to_address = '+14155550666') EXECUTE FUNCTION public.poison();
        """
    )
    try:

        async def post_all() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=stack.cfg.api_url, timeout=20) as c:
                posts = [
                    c.post(
                        "/v1/messages",
                        json={"to": POISON, "body": f"poison {uuid.uuid4()}"},
                        headers={"Authorization": f"Bearer {a}"},
                    )
                ]
                for n in range(30):
                    posts.append(
                        c.post(
                            "/v1/messages",
                            json={"to": f"+141555507{n:02d}", "body": f"fine {uuid.uuid4()}"},
                            headers={"Authorization": f"Bearer {a if n % 2 else b}"},
                        )
                    )
                return await asyncio.gather(*posts)

        answers = asyncio.run(post_all())
        assert all(r.status_code == 201 for r in answers), [r.text for r in answers]
        poison_id = answers[0].json()["id"]
        for r, token in zip(answers[1:], [b, a] * 15, strict=True):
            stack.wait_message(token, r.json()["id"], {"delivered"})

        def poison_job_failed() -> bool:
            return bool(
                stack.sql(
                    "SELECT 1 FROM pgqueuer.pgqueuer j JOIN app.message_attempts x "
                    "ON x.id = (convert_from(j.payload, 'UTF8')::jsonb ->> 'attempt_id')::uuid "
                    "WHERE x.message_id = %s AND j.status = 'failed'",
                    (poison_id,),
                )
            )

        _wait(poison_job_failed, "the poison's job to fail")
        attempt = stack.sql(
            "SELECT id, status FROM app.message_attempts WHERE message_id = %s", (poison_id,)
        )[0]
        assert attempt["status"] == "pending"
        # The sweep replaces the failed job (and counts it); the worker fails it again.
        stack.sql(
            "UPDATE app.message_attempts SET updated_at = now() - interval '1 hour' WHERE id = %s",
            (attempt["id"],),
        )
        stack.sql("DELETE FROM pgqueuer.pgqueuer WHERE status = 'failed'")
        assert stack.sql("SELECT app.run_maintenance() -> 'attempts_requeued' AS n")[0]["n"] >= 1
        _wait(poison_job_failed, "the requeued job to fail again")
        # ... until its fifth failure, which ends it.
        stack.sql(
            "UPDATE app.message_attempts SET updated_at = now() - interval '1 hour', "
            "job_failures = 4 WHERE id = %s",
            (attempt["id"],),
        )
        assert stack.sql("SELECT app.run_maintenance() -> 'attempts_given_up' AS n")[0]["n"] == 1
        message = stack.wait_message(a, poison_id, {"failed"})
        assert message["error_code"] == "job_failed"
    finally:
        stack.sql("DROP TRIGGER IF EXISTS poison ON app.message_attempts")
        stack.sql("DROP FUNCTION IF EXISTS public.poison()")
