"""Every channel through real processes: email through boto3 to the SES simulator, its
events back through signed SNS notifications; the cascade (issue #6's contract)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.system.conftest import Stack, start_stack, stop_stack


@pytest.fixture(scope="module")
def stack(
    cluster: Any,
    make_db: Any,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[Stack]:
    s = start_stack(cluster, make_db, tmp_path_factory.mktemp("channels"), ses=True)
    yield s
    stop_stack(s, request)


@pytest.fixture(scope="module")
def tenant(stack: Stack) -> dict[str, Any]:
    return stack.new_tenant("Channels Co")


def post(stack: Stack, token: str, payload: dict[str, Any]) -> dict[str, Any]:
    with stack.api(token) as c:
        r = c.post("/v1/messages", json=payload)
    assert r.status_code == 201, r.text
    return dict(r.json())


def rows(stack: Stack, token: str, view: str, message_id: str, order: str) -> list[dict[str, Any]]:
    with stack.rest(token) as c:
        r = c.get(f"/{view}", params={"message_id": f"eq.{message_id}", "order": order})
    assert r.status_code == 200, r.text
    return list(r.json())


def ses_ledger(stack: Stack) -> list[dict[str, Any]]:
    return list(httpx.get(f"{stack.cfg.ses_url}/_sim/messages").json())


def test_email_is_sent_through_ses_and_delivered_by_its_sns_events(
    stack: Stack, tenant: dict[str, Any]
) -> None:
    token = tenant["api_key"]["token"]
    msg = post(stack, token, {"channel": "email", "to": "Success@Simulator.AmazonSES.com",
                              "subject": "Hi", "body": "Hello", "html": "<p>Hello</p>"})  # fmt: skip
    assert msg["channel"] == "email" and msg["to"] == "success@simulator.amazonses.com"
    assert msg["from"] == "Hermes Tests <tests@hermes.example>"  # the tenant's default sender
    done = stack.wait_message(token, msg["id"], {"delivered", "undelivered", "failed"})
    assert done["status"] == "delivered" and done["provider"] == "ses"
    attempts = rows(stack, token, "message_attempts", msg["id"], "step")
    assert [(a["step"], a["channel"], a["provider"], a["status"]) for a in attempts] == [
        (1, "email", "ses", "delivered")
    ]
    # SES saw the attempt id as a message tag, under the configuration set.
    sent = [e for e in ses_ledger(stack) if e["message_id"] == attempts[0]["provider_message_id"]]
    assert len(sent) == 1
    assert sent[0]["tags"]["hermes_attempt_id"] == [attempts[0]["id"]]
    assert sent[0]["configuration_set"] == "hermes"
    events = rows(stack, token, "message_events", msg["id"], "id")
    statuses = [e["provider_status"] for e in events if e["event_type"] == "provider_status"]
    assert set(statuses) == {"Send", "Delivery"}
    # The subscription was confirmed by the SNS handshake first.
    assert httpx.get(f"{stack.cfg.ses_url}/_sim/stats").json()["confirmed"] is True


def test_the_contract_email_bounces_then_sms_delivers(stack: Stack, tenant: dict[str, Any]) -> None:
    """Issue #6's contract, as written: the email bounces, the SMS is delivered; both
    attempts and their events are readable through PostgREST."""
    token = tenant["api_key"]["token"]
    msg = post(
        stack,
        token,
        {
            "channels": [
                {
                    "channel": "email",
                    "to": "bounce@simulator.amazonses.com",
                    "subject": "Hi",
                    "body": "Hello",
                },
                {"channel": "sms", "to": "+14155550123", "body": "Hello", "timeout_seconds": 30},
            ]
        },
    )
    assert msg["steps"] == 2 and msg["current_step"] == 1 and msg["channel"] == "email"
    done = stack.wait_message(token, msg["id"], {"delivered", "undelivered", "failed"}, timeout=30)
    assert (
        done["status"] == "delivered" and done["channel"] == "sms" and done["to"] == "+14155550123"
    )
    attempts = rows(stack, token, "message_attempts", msg["id"], "step")
    assert [(a["step"], a["channel"], a["status"], a["is_fallback"]) for a in attempts] == [
        (1, "email", "undelivered", False),
        (2, "sms", "delivered", True),
    ]
    assert attempts[0]["error_code"] == "ses:Permanent:General"
    assert attempts[1]["timeout_seconds"] is None  # the last step waits for its receipt
    events = rows(stack, token, "message_events", msg["id"], "id")
    kinds = [(e["event_type"], e["provider_status"]) for e in events]
    assert ("provider_status", "Bounce") in kinds and ("provider_status", "delivered") in kinds
    fallback = [e for e in events if e["event_type"] == "fallback"]
    assert len(fallback) == 1 and fallback[0]["attempt_id"] == attempts[1]["id"]
    assert fallback[0]["details"]["because"] == "undelivered"
    # The timeline: the email's bounce before the fallback, the fallback before the SMS.
    order = [e["event_type"] for e in events]
    assert order.index("fallback") > max(
        i for i, e in enumerate(events) if e["provider_status"] == "Bounce"
    )
    assert order.index("fallback") < max(
        i for i, e in enumerate(events) if e["provider_status"] == "delivered"
    )


def _sns_message(stack: Stack, **over: Any) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": "forged-1",
        "TopicArn": "arn:aws:sns:us-east-1:000000000000:hermes-ses-events",
        "Message": orjson.dumps(
            {"eventType": "Delivery", "mail": {"messageId": "x", "tags": {}}}
        ).decode(),
        "Timestamp": "2026-12-03T00:00:00.000Z",
        "SignatureVersion": "2",
        "Signature": base64.b64encode(b"\0" * 256).decode(),
        "SigningCertURL": f"{stack.cfg.ses_url}/_sim/sns/cert.pem",
    } | over


def test_forged_and_foreign_sns_messages_are_refused(stack: Stack, tenant: dict[str, Any]) -> None:
    token = tenant["api_key"]["token"]
    msg = post(stack, token, {"channel": "email", "to": "success@simulator.amazonses.com",
                              "subject": "Hi", "body": "forged?"})  # fmt: skip
    done = stack.wait_message(token, msg["id"], {"delivered"})
    attempt = rows(stack, token, "message_attempts", msg["id"], "step")[0]
    event = {"eventType": "Bounce", "mail": {"messageId": attempt["provider_message_id"],
             "tags": {"hermes_attempt_id": [attempt["id"]]}},
             "bounce": {"bounceType": "Permanent", "bounceSubType": "General"}}  # fmt: skip
    url = f"{stack.cfg.callbacks_url}/v1/webhooks/ses/sns"
    cases = {
        "bad signature": _sns_message(stack, Message=orjson.dumps(event).decode()),
        "foreign topic": _sns_message(stack, TopicArn="arn:aws:sns:us-east-1:999999999999:evil"),
        "foreign certificate URL": _sns_message(
            stack, SigningCertURL="http://evil.example/cert.pem"
        ),
        "unknown signature version": _sns_message(stack, SignatureVersion="9"),
    }
    for name, body in cases.items():
        r = httpx.post(url, content=orjson.dumps(body), headers={"Content-Type": "text/plain"})
        assert r.status_code == 403, (name, r.text)
        assert r.json()["code"] == "invalid_signature", name
    assert httpx.post(url, content=b"not json").status_code == 400
    time.sleep(0.5)
    again = stack.wait_message(token, msg["id"], {"delivered"})
    assert again["status"] == done["status"] == "delivered"
    assert rows(stack, token, "message_attempts", msg["id"], "step")[0]["status"] == "delivered"


def test_ses_faults_are_retried_and_no_email_is_sent_twice(
    stack: Stack, tenant: dict[str, Any]
) -> None:
    """The simulator's fault fixtures: a 500, a 429 with Retry-After, and a timeout after
    SES accepted the email. Each ends delivered, SES saw exactly one email per message,
    and the unknown hand-off was settled by its receipt (SES cannot be asked), never by
    a resend."""
    token = tenant["api_key"]["token"]
    ids = {}
    for fault in ("error500-once", "throttle-once", "timeout-once"):
        to = f"{fault}@ses-fault.hermes.invalid"
        ids[fault] = post(
            stack, token, {"channel": "email", "to": to, "subject": "f", "body": fault}
        )["id"]
    for fault, message_id in ids.items():
        done = stack.wait_message(token, message_id, {"delivered", "failed", "unknown"}, timeout=40)
        assert done["status"] == "delivered", (fault, done)
    ledger = ses_ledger(stack)
    for fault, message_id in ids.items():
        to = f"{fault}@ses-fault.hermes.invalid"
        assert [e["to"] for e in ledger].count([to]) == 1, fault  # one email, however often tried
        events = rows(stack, token, "message_events", message_id, "id")
        errors = [e for e in events if e["event_type"] == "send_error"]
        retry = [e for e in events if e["event_type"] == "retry_scheduled"]
        assert not [e for e in events if e["event_type"] == "resend"], fault
        if fault != "timeout-once":
            assert len(errors) == 1 and len(retry) == 1, (fault, errors)
        if fault == "throttle-once":
            assert errors[0]["error_code"] == "ses:TooManyRequestsException"
            assert retry[0]["details"]["delay_seconds"] >= 2  # Retry-After honoured
        if fault == "error500-once":
            assert errors[0]["error_code"] == "ses:InternalFailure"
        if fault == "timeout-once":
            # No answer: SES's Send event (tagged with the attempt) recorded the hand-off
            # while the worker still waited -- its late timeout then changed nothing -- or,
            # had it come later, at the re-claim. Never a resend.
            handed = [e for e in events if e["event_type"] == "handed_off"]
            assert [h["details"]["via"] for h in handed] == ["receipt"], events
