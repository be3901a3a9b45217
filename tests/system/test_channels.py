"""Every channel through real processes: email through boto3 to the SES simulator, its
events back through signed SNS notifications; push through google-auth's service-account
token and FCM's HTTP v1 API to the FCM simulator; WhatsApp through the Cloud API to its
simulator, its statuses back through signed webhooks; SMS through the Vonage SDK (TLS)
to its simulator, signed delivery receipts back, and failover between providers; the cascade (issue #6's contract, and
three steps: email fails, SMS times out, push delivered)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ssl
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from hermes.services import WHATSAPP_NUMBER_2
from tests.system.conftest import Stack, start_stack, stop_stack


@pytest.fixture(scope="module")
def stack(
    cluster: Any,
    make_db: Any,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[Stack]:
    s = start_stack(
        cluster,
        make_db,
        tmp_path_factory.mktemp("channels"),
        ses=True,
        fcm=True,
        whatsapp=True,
        vonage=True,
    )
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


def fcm_ledger(stack: Stack) -> list[dict[str, Any]]:
    return list(httpx.get(f"{stack.cfg.fcm_url}/_sim/messages").json())


TOKEN = "dGVzdC1kZXZpY2U:APA91bF-0123456789abcdefABCDEF"


def test_push_is_sent_through_fcm_v1_and_delivered_on_acceptance(
    stack: Stack, tenant: dict[str, Any]
) -> None:
    token = tenant["api_key"]["token"]
    msg = post(stack, token, {"channel": "push", "to": TOKEN, "title": "Hi", "body": "Hello",
                              "data": {"order": "42", "n": "1"}})  # fmt: skip
    assert msg["channel"] == "push" and msg["from"] is None
    done = stack.wait_message(token, msg["id"], {"delivered", "failed", "unknown"})
    assert done["status"] == "delivered" and done["provider"] == "fcm"
    attempt = rows(stack, token, "message_attempts", msg["id"], "step")[0]
    sent = [m for m in fcm_ledger(stack) if m["name"] == attempt["provider_message_id"]]
    assert len(sent) == 1
    assert sent[0]["token"] == TOKEN
    assert sent[0]["notification"] == {"title": "Hi", "body": "Hello"}
    assert sent[0]["data"] == {"order": "42", "n": "1"}
    events = rows(stack, token, "message_events", msg["id"], "id")
    assert [e["provider_status"] for e in events if e["event_type"] == "provider_status"] == [
        "accepted"
    ]
    # The worker authenticated as the service account (a signed JWT for a token).
    stats = httpx.get(f"{stack.cfg.fcm_url}/_sim/stats").json()
    assert stats["tokens_issued"] >= 1 and "token_refused" not in stats


def test_fcm_errors_unregistered_token_is_suppressed_transient_ones_retried(
    stack: Stack, tenant: dict[str, Any]
) -> None:
    token = tenant["api_key"]["token"]
    ids = {}
    for fixture in ("unregistered", "invalid", "quota-once", "unavailable-once", "internal-once"):
        to = f"{fixture}-0123456789abcdefXYZ"
        ids[fixture] = post(stack, token, {"channel": "push", "to": to, "body": fixture})["id"]
    final = {"delivered", "failed", "unknown"}
    got = {f: stack.wait_message(token, i, final, timeout=40) for f, i in ids.items()}
    assert {f: (m["status"], m["error_code"]) for f, m in got.items()} == {
        "unregistered": ("failed", "fcm:UNREGISTERED"),
        "invalid": ("failed", "fcm:INVALID_ARGUMENT"),
        "quota-once": ("delivered", None),
        "unavailable-once": ("delivered", None),
        "internal-once": ("delivered", None),
    }
    accepted = [m["token"] for m in fcm_ledger(stack)]
    for fixture in ("quota-once", "unavailable-once", "internal-once"):
        assert accepted.count(f"{fixture}-0123456789abcdefXYZ") == 1, fixture
    quota = rows(stack, token, "message_events", ids["quota-once"], "id")
    retry = [e for e in quota if e["event_type"] == "retry_scheduled"]
    assert len(retry) == 1 and retry[0]["details"]["delay_seconds"] >= 2  # Retry-After
    # The dead token is on the tenant's hard_bounce list: the next push to it is refused
    # at intake, and never reaches FCM.
    again = post(stack, token, {"channel": "push", "to": "unregistered-0123456789abcdefXYZ",
                                "body": "again"})  # fmt: skip
    assert again["status"] == "rejected"
    assert [r["code"] for r in again["reasons"]] == ["suppressed"]


def test_fcm_timeout_after_accepting_is_never_resent(stack: Stack, tenant: dict[str, Any]) -> None:
    """FCM took the push but answered after the worker's timeout: the outcome is unknown,
    and FCM can be neither asked nor heard from again (no receipts). The attempt waits
    out the reconcile delay and window (shortened here), then is 'unknown' -- never resent."""
    stack.sql("UPDATE private.settings SET value = '3 seconds' WHERE key = 'reconcile_window'")
    stack.sql("UPDATE private.settings SET value = '1 second' WHERE key = 'reconcile_delay'")
    try:
        token = tenant["api_key"]["token"]
        to = "timeout-once-0123456789abcdefXYZ"
        msg = post(stack, token, {"channel": "push", "to": to, "body": "late"})
        done = stack.wait_message(token, msg["id"], {"delivered", "failed", "unknown"}, timeout=40)
        assert done["status"] == "unknown", done
        assert [m["token"] for m in fcm_ledger(stack)].count(to) == 1
        events = rows(stack, token, "message_events", msg["id"], "id")
        assert not [e for e in events if e["event_type"] in ("resend", "handed_off")]
    finally:
        stack.sql("UPDATE private.settings SET value = '10 minutes' WHERE key = 'reconcile_window'")
        stack.sql("UPDATE private.settings SET value = '2 minutes' WHERE key = 'reconcile_delay'")


def test_three_step_cascade_email_fails_sms_times_out_push_delivered(stack: Stack) -> None:
    """The issue's cascade: the email bounces, the SMS is taken by the carrier but never
    confirmed (+15005550013: sent, no final status) and times out after its 2 s, the push
    is delivered; the whole timeline is readable in api.message_events. (A tenant of its
    own: the contract test's bounce put bounce@ on the other's hard_bounce list.)"""
    token = stack.new_tenant("Cascade Co")["api_key"]["token"]
    push_to = "cascade-device-0123456789abcdef"
    msg = post(stack, token, {"channels": [
        {"channel": "email", "to": "bounce@simulator.amazonses.com", "subject": "Hi", "body": "Hello"},
        {"channel": "sms", "to": "+15005550013", "body": "Hello", "timeout_seconds": 2},
        {"channel": "push", "to": push_to, "title": "Hi", "body": "Hello"},
    ]})  # fmt: skip
    assert msg["steps"] == 3
    done = stack.wait_message(token, msg["id"], {"delivered", "undelivered", "failed"}, timeout=40)
    assert (done["status"], done["channel"], done["provider"]) == ("delivered", "push", "fcm")
    attempts = rows(stack, token, "message_attempts", msg["id"], "step")
    assert [(a["step"], a["channel"], a["status"], a["is_fallback"]) for a in attempts] == [
        (1, "email", "undelivered", False),
        (2, "sms", "timed_out", True),
        (3, "push", "delivered", True),
    ]
    events = rows(stack, token, "message_events", msg["id"], "id")
    by_attempt = {a["id"]: a["step"] for a in attempts}
    timeline = [
        (
            by_attempt.get(e["attempt_id"]),
            e["event_type"]
            if e["event_type"] != "provider_status"
            else f"provider_status {e['provider_status']}",
        )
        for e in events
    ]

    def at(step: int, what: str) -> int:
        return timeline.index((step, what))

    assert at(1, "provider_status Bounce") < at(2, "fallback")
    assert at(2, "fallback") < at(2, "provider_status sent")
    assert at(2, "provider_status sent") < at(2, "step_timeout")
    assert at(2, "step_timeout") < at(3, "fallback")
    assert at(3, "fallback") < at(3, "provider_status accepted")
    fallbacks = [e["details"]["because"] for e in events if e["event_type"] == "fallback"]
    assert fallbacks == ["undelivered", "timed_out"]
    assert [m["token"] for m in fcm_ledger(stack)].count(push_to) == 1


def wa_ledger(stack: Stack) -> list[dict[str, Any]]:
    return list(httpx.get(f"{stack.cfg.whatsapp_url}/_sim/messages").json())


def test_whatsapp_through_the_cloud_api_with_signed_status_webhooks(
    stack: Stack, tenant: dict[str, Any]
) -> None:
    token = tenant["api_key"]["token"]
    ok = post(stack, token, {"channel": "whatsapp", "to": "+14155550171", "body": "Hello"})
    failed = post(stack, token, {"channel": "whatsapp", "to": "+14155550172", "body": "Hello"})
    assert ok["from"] == "+14155550170"  # the tenant's default WhatsApp number
    done = stack.wait_message(token, ok["id"], {"delivered", "failed"})
    assert done["status"] == "delivered" and done["provider"] == "whatsapp"
    bad = stack.wait_message(token, failed["id"], {"delivered", "failed"})
    assert (bad["status"], bad["error_code"]) == ("failed", "whatsapp:131026")
    attempt = rows(stack, token, "message_attempts", ok["id"], "step")[0]
    sent = [m for m in wa_ledger(stack) if m["id"] == attempt["provider_message_id"]]
    assert len(sent) == 1
    # The attempt id travelled as biz_opaque_callback_data; the sender as its number's id.
    assert sent[0]["biz_opaque_callback_data"] == attempt["id"]
    assert sent[0]["phone_number_id"] == "100000000000001" and sent[0]["to"] == "+14155550171"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # read follows delivered
        events = rows(stack, token, "message_events", ok["id"], "id")
        statuses = [e["provider_status"] for e in events if e["event_type"] == "provider_status"]
        if "read" in statuses:
            break
        time.sleep(0.2)
    assert statuses == ["accepted", "sent", "delivered", "read"]
    assert rows(stack, token, "message_attempts", ok["id"], "step")[0]["provider_status"] == "read"
    # Meta's subscription handshake was made (and answered) before any webhook.
    assert httpx.get(f"{stack.cfg.whatsapp_url}/_sim/stats").json()["verified"] is True


def test_whatsapp_refusals_are_final_throttling_and_errors_retried(
    stack: Stack, tenant: dict[str, Any]
) -> None:
    token = tenant["api_key"]["token"]
    numbers = {
        "refused": "+14155550174",
        "rate_limited": "+14155550175",
        "error500": "+14155550176",
    }
    ids = {k: post(stack, token, {"channel": "whatsapp", "to": n, "body": k})["id"]
           for k, n in numbers.items()}  # fmt: skip
    got = {
        k: stack.wait_message(token, i, {"delivered", "failed"}, timeout=40) for k, i in ids.items()
    }
    assert {k: (m["status"], m["error_code"]) for k, m in got.items()} == {
        "refused": ("failed", "whatsapp:131030"),
        "rate_limited": ("delivered", None),
        "error500": ("delivered", None),
    }
    ledger = [m["to"] for m in wa_ledger(stack)]
    assert ledger.count("+14155550174") == 0  # refused: never accepted
    assert ledger.count("+14155550175") == 1 and ledger.count("+14155550176") == 1


def test_whatsapp_templates_are_sent_as_templates(stack: Stack, tenant: dict[str, Any]) -> None:
    """A business-initiated WhatsApp message is an approved template: sent as the Cloud
    API's template type (name, language, body parameters); an unknown template is a
    final refusal (132001)."""
    token = tenant["api_key"]["token"]
    template = {"name": "order_update", "language": "en_US", "parameters": ["Ada", "#42"]}
    ok = post(stack, token, {"channel": "whatsapp", "to": "+14155550171", "template": template})
    assert ok["body"] == "[template order_update/en_US] Ada | #42"
    done = stack.wait_message(token, ok["id"], {"delivered", "failed"})
    assert done["status"] == "delivered"
    attempt = rows(stack, token, "message_attempts", ok["id"], "step")[0]
    sent = [m for m in wa_ledger(stack) if m["biz_opaque_callback_data"] == attempt["id"]]
    assert [m["body"] for m in sent] == ["template:order_update/en_US Ada | #42"]
    missing = post(
        stack,
        token,
        {
            "channel": "whatsapp",
            "to": "+14155550171",
            "template": {"name": "missing_template", "language": "en"},
        },
    )
    bad = stack.wait_message(token, missing["id"], {"delivered", "failed"})
    assert (bad["status"], bad["error_code"]) == ("failed", "whatsapp:132001")
    with stack.api(token) as c:
        r = c.post(
            "/v1/messages",
            json={"channel": "sms", "to": "+14155550171", "body": "x", "template": template},
        )
    assert r.status_code == 422 and r.json()["code"] == "invalid_field", r.text


def test_whatsapp_stop_opts_out_of_whatsapp_and_is_confirmed_over_whatsapp(stack: Stack) -> None:
    """A person replies STOP to a tenant's WhatsApp number: Meta's signed messages webhook
    reaches POST /v1/webhooks/whatsapp, the tenant is the one that number belongs to, the
    opt-out covers WhatsApp (not SMS), one confirmation goes back over WhatsApp, and the
    tenant's next WhatsApp message to them is refused."""
    tenant = stack.new_tenant("WA Stop Co", whatsapp_from=WHATSAPP_NUMBER_2)
    token = tenant["api_key"]["token"]
    person = "+14155550171"
    r = httpx.post(
        f"{stack.cfg.whatsapp_url}/_sim/inbound",
        json={"from": person, "to": WHATSAPP_NUMBER_2, "body": "STOP"},
    )
    assert r.status_code == 200, r.text
    wamid = r.json()["id"]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        inbound = stack.sql(
            "SELECT tenant_id::text, from_address, to_address, keyword, action, reply_message_id::text"
            " FROM app.inbound_messages WHERE provider = 'whatsapp' AND provider_message_id = %s",
            (wamid,),
        )
        if inbound:
            break
        time.sleep(0.1)
    assert inbound, "the inbound webhook was not recorded"
    got = inbound[0]
    assert (got["tenant_id"], got["from_address"], got["to_address"]) == (
        tenant["tenant"]["id"],
        person,
        WHATSAPP_NUMBER_2,
    )
    assert (got["keyword"], got["action"]) == ("STOP", "opt_out")
    reply = stack.wait_message(token, got["reply_message_id"], {"delivered", "failed"})
    assert (reply["status"], reply["channel"], reply["from"]) == (
        "delivered",
        "whatsapp",
        WHATSAPP_NUMBER_2,
    )
    sent = [m for m in wa_ledger(stack) if m["phone_number_id"] == "100000000000002"]
    assert [m["to"] for m in sent] == [person] and "unsubscribed" in sent[0]["body"]
    # The tenant's next WhatsApp message to them is refused; SMS is another channel.
    refused = post(stack, token, {"channel": "whatsapp", "to": person, "body": "promo"})
    assert refused["status"] == "rejected"
    assert [x["code"] for x in refused["reasons"]] == ["opted_out"]
    assert (
        post(stack, token, {"channel": "sms", "to": person, "body": "hi"})["status"] != "rejected"
    )
    # A second tenant on the other number is not touched.
    other = stack.new_tenant("WA Other Co")
    assert (
        post(stack, other["api_key"]["token"], {"channel": "whatsapp", "to": person, "body": "x"})[
            "status"
        ]
        != "rejected"
    )
    # A forged STOP (signed with another secret) is refused before it is read.
    forged = orjson.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
        {"field": "messages", "value": {"messaging_product": "whatsapp",
         "metadata": {"display_phone_number": WHATSAPP_NUMBER_2[1:], "phone_number_id": "100000000000002"},
         "messages": [{"from": "14155550177", "id": "wamid.forged", "timestamp": "1", "type": "text",
                       "text": {"body": "STOP"}}]}}]}]})  # fmt: skip
    sig = "sha256=" + hmac.new(b"not-the-app-secret", forged, hashlib.sha256).hexdigest()
    r = httpx.post(
        f"{stack.cfg.api_url}/v1/webhooks/whatsapp",
        content=forged,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": sig},
    )
    assert r.status_code == 403
    assert not stack.sql(
        "SELECT 1 FROM app.inbound_messages WHERE provider_message_id = 'wamid.forged'"
    )


def _wa_status(attempt: dict[str, Any], status: str) -> bytes:
    return orjson.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
        {"field": "messages", "value": {"messaging_product": "whatsapp", "statuses": [
            {"id": attempt["provider_message_id"], "status": status, "timestamp": "1",
             "recipient_id": "14155550173", "biz_opaque_callback_data": attempt["id"],
             "errors": [{"code": 131026, "title": "forged"}]}]}}]}]})  # fmt: skip


def test_forged_whatsapp_webhooks_are_refused_and_the_handshake_needs_the_token(
    stack: Stack, tenant: dict[str, Any]
) -> None:
    token = tenant["api_key"]["token"]
    msg = post(stack, token, {"channel": "whatsapp", "to": "+14155550173", "body": "forged?"})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        attempt = rows(stack, token, "message_attempts", msg["id"], "step")[0]
        if attempt["provider_status"] == "sent":
            break
        time.sleep(0.2)
    assert attempt["provider_status"] == "sent"  # +14155550173: sent, never final
    url = f"{stack.cfg.callbacks_url}/v1/webhooks/whatsapp"
    body = _wa_status(attempt, "failed")
    wrong = "sha256=" + hmac.new(b"not-the-secret", body, hashlib.sha256).hexdigest()
    other = _wa_status(attempt, "delivered")
    right_for_other = (
        "sha256=" + hmac.new(b"simulator-whatsapp-app-secret", other, hashlib.sha256).hexdigest()
    )
    cases = {
        "no signature": {},
        "wrong secret": {"X-Hub-Signature-256": wrong},
        "signature of another body": {"X-Hub-Signature-256": right_for_other},
        "not sha256": {"X-Hub-Signature-256": "sha1=" + wrong[7:]},
        "garbage": {"X-Hub-Signature-256": "sha256=zz"},
    }
    for name, headers in cases.items():
        r = httpx.post(url, content=body, headers={"Content-Type": "application/json"} | headers)
        assert r.status_code == 403, (name, r.text)
        assert r.json()["code"] == "invalid_signature", name
    time.sleep(0.5)
    after = rows(stack, token, "message_attempts", msg["id"], "step")[0]
    assert (after["status"], after["provider_status"]) == ("handed_off", "sent")
    events = rows(stack, token, "message_events", msg["id"], "id")
    assert not [e for e in events if e["provider_status"] in ("failed", "delivered")]
    # The subscription handshake: the challenge comes back only with the verify token.
    params = {"hub.mode": "subscribe", "hub.challenge": "1158201444"}
    r = httpx.get(url, params=params | {"hub.verify_token": "wrong"})
    assert r.status_code == 403 and r.json()["code"] == "invalid_verify_token"
    r = httpx.get(url, params=params | {"hub.verify_token": "simulator-whatsapp-verify-token"})
    assert r.status_code == 200 and r.text == "1158201444"


def vonage_ledger(stack: Stack) -> list[dict[str, Any]]:
    ca = ssl.create_default_context(cafile=str(stack.cfg.vonage_ca_dir / "ca.pem"))
    return list(httpx.get(f"{stack.cfg.vonage_url}/_sim/messages", verify=ca).json())


def routed_tenant(stack: Stack, name: str, providers: list[str]) -> str:
    token: str = stack.new_tenant(name)["api_key"]["token"]
    with stack.api(token) as c:
        r = c.put("/v1/policy", json={"providers": {"sms": providers}})
    assert r.status_code == 200, r.text
    assert r.json()["providers"] == {"sms": providers}
    return token


def test_sms_through_vonage_with_signed_delivery_receipts(stack: Stack) -> None:
    token = routed_tenant(stack, "Vonage Co", ["vonage"])
    numbers = {
        "delivered": "+14155550181",
        "failed": "+14155550182",
        "expired": "+14155550183",
        "refused": "+14155550184",
        "throttled_once": "+14155550185",
        "error500_once": "+14155550186",
    }
    ids = {k: post(stack, token, {"to": n, "body": k})["id"] for k, n in numbers.items()}
    final = {"delivered", "failed", "undelivered", "unknown"}
    got = {k: stack.wait_message(token, i, final, timeout=40) for k, i in ids.items()}
    assert {k: (m["status"], m["provider"], m["error_code"]) for k, m in got.items()} == {
        "delivered": ("delivered", "vonage", None),
        "failed": ("failed", "vonage", "vonage:1"),
        "expired": ("undelivered", "vonage", "vonage:5"),
        "refused": ("failed", "vonage", "vonage:29"),
        "throttled_once": ("delivered", "vonage", None),
        "error500_once": ("delivered", "vonage", None),
    }
    ledger = vonage_ledger(stack)
    attempt = rows(stack, token, "message_attempts", ids["delivered"], "step")[0]
    sent = [m for m in ledger if m["message_id"] == attempt["provider_message_id"]]
    assert len(sent) == 1 and sent[0]["client_ref"] == attempt["id"]  # the attempt id travels
    assert sent[0]["from"] == "15005550006" and sent[0]["to"] == "+14155550181"
    to = [m["to"] for m in ledger]
    assert to.count("+14155550184") == 0
    assert to.count("+14155550185") == 1 and to.count("+14155550186") == 1
    events = rows(stack, token, "message_events", ids["delivered"], "id")
    statuses = [e["provider_status"] for e in events if e["event_type"] == "provider_status"]
    # (the first receipt may land before the worker records the hand-off's answer)
    assert sorted(statuses) == ["accepted", "delivered", "submitted"]


def test_failover_to_the_next_provider_when_the_first_does_not_take_the_message(
    stack: Stack,
) -> None:
    """Vonage answers HTTP 500 for +14155550188, every time: after its second refusal the
    step fails over to Twilio (the tenant's next SMS provider), which delivers it."""
    token = routed_tenant(stack, "Failover Co", ["vonage", "twilio"])
    msg = post(stack, token, {"to": "+14155550188", "body": "failover"})
    done = stack.wait_message(token, msg["id"], {"delivered", "failed"}, timeout=40)
    assert (done["status"], done["provider"]) == ("delivered", "twilio")
    events = rows(stack, token, "message_events", msg["id"], "id")
    errors = [e["error_code"] for e in events if e["event_type"] == "send_error"]
    assert errors == ["vonage:http_500", "vonage:http_500"]
    failover = [e for e in events if e["event_type"] == "failover"]
    assert [(e["details"]["from"], e["details"]["to"]) for e in failover] == [("vonage", "twilio")]
    assert [m["to"] for m in vonage_ledger(stack)].count("+14155550188") == 0
    assert [m["to"] for m in stack.carrier_ledger()].count("+14155550188") == 1


def test_forged_vonage_receipts_are_refused(stack: Stack) -> None:
    token = routed_tenant(stack, "Vonage Forgery Co", ["vonage"])
    msg = post(stack, token, {"to": "+14155550181", "body": "forged?"})
    stack.wait_message(token, msg["id"], {"delivered"}, timeout=20)
    attempt = rows(stack, token, "message_attempts", msg["id"], "step")[0]
    url = f"{stack.cfg.callbacks_url}/v1/webhooks/vonage/dlr"

    def signed(
        params: dict[str, str], secret: str = "simulator-vonage-signature-secret"
    ) -> dict[str, str]:
        mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)
        for k in sorted(params):
            mac.update(f"&{k}={params[k].replace('&', '_').replace('=', '_')}".encode())
        return params | {"sig": mac.hexdigest()}

    base = {"msisdn": "14155550181", "to": "15005550006", "messageId": attempt["provider_message_id"],
            "status": "failed", "err-code": "1", "api-key": "simkey01", "client-ref": attempt["id"],
            "nonce": "n-1"}  # fmt: skip
    now = str(int(time.time()))
    cases = {
        "unsigned": base | {"timestamp": now},
        "wrong secret": signed(base | {"timestamp": now}, "guess"),
        "tampered after signing": signed(base | {"timestamp": now}) | {"status": "expired"},
        "stale": signed(base | {"timestamp": str(int(time.time()) - 3600)}),
        "another account": signed(base | {"timestamp": now, "api-key": "other"}),
    }
    for name, params in cases.items():
        r = httpx.post(url, data=params)
        assert r.status_code == 403, (name, r.text)
        assert r.json()["code"] == "invalid_signature", name
    # A correctly signed receipt is taken (delivered stays: failed does not outrank it).
    assert httpx.post(url, data=signed(base | {"timestamp": now})).status_code == 204
    time.sleep(0.5)
    after = stack.wait_message(token, msg["id"], {"delivered"})
    assert after["status"] == "delivered"
