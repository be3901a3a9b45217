"""The Twilio simulator, run as a real process and driven by the official ``twilio`` SDK.

Status callbacks are received by a small HTTP server in this process and checked with
the SDK's own ``RequestValidator`` (the simulator signs them independently).
"""

from __future__ import annotations

import asyncio
import base64
import math
import os
import re
import socket
import string
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from hermes.services import free_port
from simulators.twilio.app import (
    _GSM7_BASIC,
    _GSM7_EXTENDED,
    SimConfig,
    compute_signature,
    create_app,
    form_encode,
    num_segments,
)

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "test-auth-token-7f3a"
FROM = "+15005550006"
API = f"/2010-04-01/Accounts/{ACCOUNT_SID}"
CARRIER_ERRORS = {30003, 30005, 30006, 30007}


# ----------------------------------------------------------------- simulator process


@dataclass
class Sim:
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def ledger(self) -> list[dict[str, Any]]:
        ledger: list[dict[str, Any]] = httpx.get(f"{self.url}/_sim/messages").json()
        return ledger

    def reset(self) -> dict[str, Any]:
        r = httpx.post(f"{self.url}/_sim/reset")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def get(self, path: str, **params: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", params=params, auth=(ACCOUNT_SID, AUTH_TOKEN))

    def wait_log(self, *fragments: str, timeout: float = 5.0) -> str:
        """The first log line containing every fragment."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log_path.read_text().splitlines():
                if all(f in line for f in fragments):
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(f"no log line with {fragments}:\n{self.log_path.read_text()}")
            time.sleep(0.02)


def start_sim(tmp: Path, extra_env: dict[str, str]) -> Sim:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIM_TWILIO_", "TWILIO_"))}
    env |= {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "SIM_TWILIO_RECEIPT_DELAY_MS": "50",
        "PYTHONUNBUFFERED": "1",
    } | extra_env
    log_path = tmp / "sim.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "simulators.twilio", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    sim = Sim(f"http://127.0.0.1:{port}", proc, log_path)
    deadline = time.monotonic() + 15
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"simulator exited ({proc.returncode}):\n{log_path.read_text()}")
        try:
            if httpx.get(f"{sim.url}/_sim/health", timeout=1).json() == {"ok": True}:
                return sim
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            stop_sim(sim)
            raise RuntimeError(f"simulator did not start:\n{log_path.read_text()}")
        time.sleep(0.05)


def stop_sim(sim: Sim) -> None:
    sim.proc.terminate()
    try:
        sim.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        sim.proc.kill()
        sim.proc.wait()


# ------------------------------------------------------------------ callback receiver


@dataclass(frozen=True)
class Received:
    path: str
    url: str
    headers: dict[str, str]  # lower-cased names
    pairs: list[tuple[str, str]]
    at: float

    @property
    def params(self) -> dict[str, str]:
        return dict(self.pairs)

    @property
    def status(self) -> str:
        return self.params["MessageStatus"]


class Receiver:
    """Records status callbacks. Paths under /flaky/ answer 500 to their first request,
    paths under /down/ always answer 503, paths under /gone/ 410, anything else 200."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[Received] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length).decode("utf-8")
                call = Received(
                    path=self.path,
                    url=receiver.base_url + self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    pairs=parse_qsl(raw, keep_blank_values=True, strict_parsing=True),
                    at=time.monotonic(),
                )
                code = receiver._record(call)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _record(self, call: Received) -> int:
        with self._lock:
            earlier = sum(1 for c in self._calls if c.path == call.path)
            self._calls.append(call)
        if call.path.startswith("/down/"):
            return 503
        if call.path.startswith("/gone/"):
            return 410
        if call.path.startswith("/flaky/") and earlier == 0:
            return 500
        return 200

    def calls(self, path: str) -> list[Received]:
        with self._lock:
            return [c for c in self._calls if c.path == path]

    def wait(self, path: str, count: int, timeout: float = 5.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while True:
            calls = self.calls(path)
            if len(calls) >= count:
                return calls
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(calls)} callback(s) at {path}, wanted {count}")
            time.sleep(0.01)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


# -------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    s = start_sim(tmp_path_factory.mktemp("twilio-sim"), {})
    yield s
    stop_sim(s)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def make_client(sim: Sim, token: str = AUTH_TOKEN, account_sid: str | None = None) -> Any:
    client = Client(
        ACCOUNT_SID, token, account_sid=account_sid, http_client=TwilioHttpClient(timeout=10)
    )
    client.api.base_url = sim.url
    return client


@pytest.fixture
def client(sim: Sim) -> Iterator[Any]:
    sim.reset()
    c = make_client(sim)
    yield c
    c.http_client.session.close()


def callback_path(kind: str = "status") -> str:
    return f"/{kind}/{uuid.uuid4().hex}?tenant=acme&n=1"


def expected_params(msg: Any, status: str, **extra: str) -> dict[str, str]:
    return {
        "MessageSid": msg.sid,
        "SmsSid": msg.sid,
        "SmsMessageSid": msg.sid,
        "AccountSid": ACCOUNT_SID,
        "From": FROM,
        "To": msg.to,
        "MessageStatus": status,
        "SmsStatus": status,
        "ApiVersion": "2010-04-01",
        **extra,
    }


def assert_signed(call: Received) -> None:
    signature = call.headers["x-twilio-signature"]
    validator = RequestValidator(AUTH_TOKEN)
    assert validator.validate(call.url, call.params, signature)
    # The signature covers the token, every param and the whole URL with its query.
    assert not RequestValidator("another-token").validate(call.url, call.params, signature)
    assert not validator.validate(call.url, call.params | {"MessageStatus": "x"}, signature)
    assert not validator.validate(call.url, call.params | {"Extra": "1"}, signature)
    assert not validator.validate(call.url.replace("acme", "evil"), call.params, signature)


# ----------------------------------------------------------------------- unit checks


def test_config_from_env() -> None:
    assert SimConfig.from_env({}) == SimConfig(
        account_sid="ACsimulator00000000000000000000000",
        auth_token="simulator-auth-token",
        latency_ms=0,
        receipt_delay_ms=200,
        failure_rate=0.0,
        api_error_rate=0.0,
        seed=None,
    )
    cfg = SimConfig.from_env(
        {
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": "tok",
            "SIM_TWILIO_LATENCY_MS": "25",
            "SIM_TWILIO_RECEIPT_DELAY_MS": "10",
            "SIM_TWILIO_FAILURE_RATE": "0.25",
            "SIM_TWILIO_API_ERROR_RATE": "0.5",
            "SIM_TWILIO_SEED": "7",
        }
    )
    assert (cfg.account_sid, cfg.auth_token, cfg.latency_ms, cfg.receipt_delay_ms) == (
        ACCOUNT_SID,
        "tok",
        25,
        10,
    )
    assert (cfg.failure_rate, cfg.api_error_rate, cfg.seed) == (0.25, 0.5, 7)
    assert (cfg.callback_loss_rate, cfg.log_requests) == (0.0, True)
    cfg = SimConfig.from_env(
        {"SIM_TWILIO_CALLBACK_LOSS_RATE": "0.125", "SIM_TWILIO_LOG_REQUESTS": "0"}
    )
    assert (cfg.callback_loss_rate, cfg.log_requests) == (0.125, False)
    assert SimConfig.from_env({"SIM_TWILIO_LOG_REQUESTS": "1"}).log_requests is True
    with pytest.raises(ValueError, match="failure_rate"):
        SimConfig.from_env({"SIM_TWILIO_FAILURE_RATE": "1.5"})
    with pytest.raises(ValueError, match="callback_loss_rate"):
        SimConfig.from_env({"SIM_TWILIO_CALLBACK_LOSS_RATE": "-0.1"})
    with pytest.raises(ValueError, match="SIM_TWILIO_LOG_REQUESTS"):
        SimConfig.from_env({"SIM_TWILIO_LOG_REQUESTS": "sometimes"})
    with pytest.raises(ValueError, match="account SID"):
        SimConfig.from_env({"TWILIO_ACCOUNT_SID": "AC123"})


def test_signature_matches_twilio_reference_vectors() -> None:
    # The vectors of twilio-python's own request validator tests.
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
        "Caller": "+14158675309",
    }
    assert compute_signature("12345", url, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    repeated = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")]
    assert compute_signature("12345", url, repeated) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="


def test_num_segments() -> None:
    assert [num_segments(b) for b in ("", "hi", "a" * 160, "a" * 161, "a" * 306)] == [1, 1, 1, 2, 2]
    assert [num_segments("a" * 307), num_segments("€" * 80), num_segments("€" * 81)] == [3, 1, 2]
    assert [num_segments("ł" * 70), num_segments("ł" * 71), num_segments("😀" * 35)] == [1, 2, 1]


def _reference_num_segments(body: str) -> int:
    """The original, straightforward definition."""
    if not body:
        return 1
    if all(c in _GSM7_BASIC or c in _GSM7_EXTENDED for c in body):
        units = sum(2 if c in _GSM7_EXTENDED else 1 for c in body)
        single, multi = 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2
        single, multi = 70, 67
    return 1 if units <= single else math.ceil(units / multi)


GSM_ISH = st.text(alphabet=st.sampled_from([*sorted(_GSM7_BASIC | _GSM7_EXTENDED), "ł", "😀"]))


@given(st.one_of(GSM_ISH, st.text()))
def test_num_segments_matches_its_definition(body: str) -> None:
    assert num_segments(body) == _reference_num_segments(body)


@given(st.lists(st.tuples(st.text(), st.text())))
def test_form_encode_is_urlencode(pairs: list[tuple[str, str]]) -> None:
    assert form_encode(pairs) == urlencode(pairs)


# ------------------------------------------------------------------ through the SDK


def test_create_delivers_signed_callbacks(sim: Sim, receiver: Receiver, client: Any) -> None:
    path = callback_path()
    url = receiver.base_url + path
    before = datetime.now(UTC).replace(microsecond=0)
    t0 = time.monotonic()
    msg = client.messages.create(
        to="+14155550100", from_=FROM, body="Hello from Hermes", status_callback=url
    )
    after = datetime.now(UTC)

    assert msg.sid.startswith("SM") and len(msg.sid) == 34
    assert set(msg.sid[2:]) <= set(string.hexdigits)
    assert (msg.status, msg.to, msg.from_, msg.body) == (
        "queued",
        "+14155550100",
        FROM,
        "Hello from Hermes",
    )
    assert (msg.account_sid, msg.direction, msg.api_version) == (
        ACCOUNT_SID,
        "outbound-api",
        "2010-04-01",
    )
    assert (msg.num_segments, msg.num_media, msg.messaging_service_sid) == ("1", "0", None)
    assert (msg.error_code, msg.error_message, msg.price, msg.price_unit) == (
        None,
        None,
        None,
        "USD",
    )
    assert msg.uri == f"{API}/Messages/{msg.sid}.json"
    assert msg.subresource_uris == {
        "media": f"{API}/Messages/{msg.sid}/Media.json",
        "feedback": f"{API}/Messages/{msg.sid}/Feedback.json",
    }
    assert before <= msg.date_created <= after
    assert msg.date_sent == msg.date_created == msg.date_updated

    calls = receiver.wait(path, 3)
    assert [c.status for c in calls] == ["queued", "sent", "delivered"]
    for call in calls:
        assert call.url == url
        assert call.params == expected_params(msg, call.status)
        assert call.headers["content-type"] == "application/x-www-form-urlencoded"
        assert_signed(call)
    tokens = [c.headers["i-twilio-idempotency-token"] for c in calls]
    assert len(set(tokens)) == 3 and all(tokens)
    # One status every SIM_TWILIO_RECEIPT_DELAY_MS (50 ms): the last after three of them.
    assert 0.14 < calls[2].at - t0 < 2.0

    time.sleep(0.2)
    assert len(receiver.calls(path)) == 3
    fetched = client.messages(msg.sid).fetch()
    assert (fetched.sid, fetched.status, fetched.error_code) == (msg.sid, "delivered", None)
    assert fetched.date_updated >= msg.date_created
    assert sim.ledger() == [
        {
            "sid": msg.sid,
            "to": "+14155550100",
            "from": FROM,
            "body": "Hello from Hermes",
            "status_callback": url,
            "messaging_service_sid": None,
            "status": "delivered",
            "error_code": None,
            "date_created": msg.date_created.isoformat(),
        }
    ]
    # One readable line per API call and per callback.
    line = sim.wait_log(f"API POST {API}/Messages.json -> 201", msg.sid)
    # ... with the recipient masked: logs never carry a full address (issue 19).
    assert "to=+1415***0100" in line and "4155550100" not in line
    line = sim.wait_log(f"CALLBACK {msg.sid} delivered -> {url} : HTTP 200")
    assert "attempt 1/2" in line


@pytest.mark.parametrize(
    ("to", "statuses", "error_code"),
    [
        ("+15005550010", ["queued", "sent", "undelivered"], 30003),
        ("+15005550011", ["queued", "sent", "undelivered"], 30005),
        ("+15005550012", ["queued", "failed"], 30008),
    ],
)
def test_simulated_carrier_failures(
    sim: Sim, receiver: Receiver, client: Any, to: str, statuses: list[str], error_code: int
) -> None:
    path = callback_path()
    msg = client.messages.create(
        to=to, from_=FROM, body="will fail", status_callback=receiver.base_url + path
    )
    assert (msg.status, msg.error_code) == ("queued", None)
    calls = receiver.wait(path, len(statuses))
    assert [c.status for c in calls] == statuses
    for call in calls[:-1]:
        assert call.params == expected_params(msg, call.status)
    assert calls[-1].params == expected_params(msg, statuses[-1], ErrorCode=str(error_code))
    assert "ErrorMessage" not in calls[-1].params
    for call in calls:
        assert_signed(call)

    fetched = client.messages(msg.sid).fetch()
    assert (fetched.status, fetched.error_code) == (statuses[-1], error_code)
    assert fetched.error_message
    [entry] = sim.ledger()
    assert (entry["sid"], entry["status"], entry["error_code"]) == (
        msg.sid,
        statuses[-1],
        error_code,
    )


@pytest.mark.parametrize(
    ("to", "from_", "code", "text"),
    [
        ("+14155550100", "+15005550001", 21212, "is not a valid phone number, shortcode"),
        ("+14155550100", "+15005550007", 21606, "is not a valid, SMS-capable inbound"),
        ("+14155550100", "+15005550008", 21611, "exceeded the maximum number of queued"),
        ("+15005550001", FROM, 21211, "The 'To' number +15005550001 is not a valid phone"),
        ("+15005550002", FROM, 21612, "is not currently reachable"),
        ("+15005550003", FROM, 21408, "Permission to send an SMS has not been enabled"),
        ("+15005550004", FROM, 21610, "Attempt to send to unsubscribed recipient"),
        ("+15005550009", FROM, 21614, "is not a valid mobile number"),
        ("4155550100", FROM, 21211, "The 'To' number 4155550100 is not a valid phone"),
        ("+14155550100", "not a number!", 21212, "is not a valid phone number, shortcode"),
    ],
)
def test_magic_numbers_raise_twilio_errors(
    sim: Sim, receiver: Receiver, client: Any, to: str, from_: str, code: int, text: str
) -> None:
    path = callback_path()
    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(
            to=to, from_=from_, body="magic", status_callback=receiver.base_url + path
        )
    exc = caught.value
    assert (exc.status, exc.code, exc.method) == (400, code, "POST")
    assert text in exc.msg
    assert exc.uri == f"/Accounts/{ACCOUNT_SID}/Messages.json"
    assert sim.ledger() == []

    # The raw answer is Twilio's error JSON.
    r = httpx.post(
        f"{sim.url}{API}/Messages.json",
        data={"To": to, "From": from_, "Body": "magic"},
        auth=(ACCOUNT_SID, AUTH_TOKEN),
    )
    assert r.status_code == 400
    body = r.json()
    assert body == {
        "code": code,
        "message": body["message"],
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": 400,
    }
    assert text in body["message"]
    assert sim.ledger() == []


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"to": "", "from_": FROM, "body": "x"}, 21604),
        ({"to": "+14155550100", "from_": FROM}, 21602),
        ({"to": "+14155550100", "body": "x"}, 21603),
        ({"to": "+14155550100", "from_": FROM, "body": "x" * 1601}, 21617),
        ({"to": "+14155550100", "from_": FROM, "body": "x", "status_callback": "nope"}, 21609),
    ],
)
def test_missing_or_invalid_params(
    sim: Sim, client: Any, kwargs: dict[str, str], code: int
) -> None:
    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(**kwargs)
    assert (caught.value.status, caught.value.code) == (400, code)
    assert sim.ledger() == []


def test_authentication(sim: Sim, client: Any) -> None:
    twilio_401 = {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }
    bad = make_client(sim, token="wrong-token")
    other = make_client(sim, account_sid="AC" + "f" * 32)  # right credentials, other account
    try:
        for c in (bad, other):
            with pytest.raises(TwilioRestException) as caught:
                c.messages.create(to="+14155550100", from_=FROM, body="x")
            assert (caught.value.status, caught.value.code) == (401, 20003)
            # Lists raise a plain TwilioException("Unable to fetch page", response).
            with pytest.raises(TwilioException) as listing:
                c.messages.list(limit=1)
            assert listing.value.args[0] == "Unable to fetch page"
            assert listing.value.args[1].status_code == 401
        with pytest.raises(TwilioRestException) as caught:
            bad.messages("SM" + "0" * 32).fetch()
        assert (caught.value.status, caught.value.code) == (401, 20003)
    finally:
        bad.http_client.session.close()
        other.http_client.session.close()
    assert sim.ledger() == []

    anonymous = httpx.post(f"{sim.url}{API}/Messages.json", data={"To": "+14155550100"})
    assert anonymous.status_code == 401
    assert anonymous.json() == twilio_401
    assert anonymous.headers["www-authenticate"] == 'Basic realm="Twilio API"'
    wrong = httpx.get(f"{sim.url}{API}/Messages.json", auth=(ACCOUNT_SID, "nope"))
    assert (wrong.status_code, wrong.json()) == (401, twilio_401)


def test_list_filters_and_paging(sim: Sim, client: Any) -> None:
    to = "+14155550123"
    created = [client.messages.create(to=to, from_=FROM, body=f"page test {i}") for i in range(5)]
    other_from = client.messages.create(to=to, from_="+14155559999", body="other sender")
    client.messages.create(to="+14155550124", from_=FROM, body="other recipient")
    newest_first = [m.sid for m in reversed(created)]
    since = created[0].date_sent - timedelta(seconds=1)

    found = client.messages.list(to=to, from_=FROM, date_sent_after=since)
    assert [m.sid for m in found] == newest_first
    assert [m.body for m in found] == [f"page test {i}" for i in (4, 3, 2, 1, 0)]
    assert [m.sid for m in client.messages.list(to=to)] == [other_from.sid, *newest_first]

    # Paging: smaller pages than there are messages, through list, stream and page.
    assert [m.sid for m in client.messages.list(to=to, from_=FROM, page_size=2)] == newest_first
    assert [m.sid for m in client.messages.list(to=to, from_=FROM, limit=3, page_size=2)] == (
        newest_first[:3]
    )
    assert [m.sid for m in client.messages.stream(to=to, from_=FROM, page_size=2)] == newest_first
    page = client.messages.page(to=to, from_=FROM, page_size=2)
    seen = []
    while page is not None:
        seen.append([m.sid for m in page])
        page = page.next_page()
    assert seen == [newest_first[:2], newest_first[2:4], newest_first[4:]]

    # Date filters, as the SDK serializes them (datetimes, or dates as midnight UTC).
    assert client.messages.list(to=to, date_sent_after=datetime.now(UTC) + timedelta(days=1)) == []
    assert client.messages.list(to=to, date_sent_before=since) == []
    assert len(client.messages.list(to=to, date_sent_before=datetime.now(UTC) + timedelta(1))) == 6
    day = created[0].date_sent.date()
    same_day = [m.sid for m in reversed(created) if m.date_sent.date() == day]
    assert [m.sid for m in client.messages.list(to=to, from_=FROM, date_sent=day)] == same_day
    assert client.messages.list(to=to, date_sent=day - timedelta(days=1)) == []
    # Date-only values (Twilio's documented form) compare by day, inclusive.
    r = sim.get(f"{API}/Messages.json", To=to, From=FROM, **{"DateSent>": day.isoformat()})
    assert [m["sid"] for m in r.json()["messages"]] == newest_first

    # Twilio's page format.
    base = f"{API}/Messages.json"
    query = "To=%2B14155550123&From=%2B15005550006&PageSize=2"
    r = sim.get(base, To=to, From=FROM, PageSize="2")
    assert r.status_code == 200
    first = r.json()
    assert [m["sid"] for m in first.pop("messages")] == newest_first[:2]
    assert first == {
        "end": 1,
        "first_page_uri": f"{base}?{query}&Page=0",
        "next_page_uri": f"{base}?{query}&Page=1&PageToken=PA{newest_first[1]}",
        "page": 0,
        "page_size": 2,
        "previous_page_uri": None,
        "start": 0,
        "uri": f"{base}?{query}&Page=0",
    }
    second = httpx.get(sim.url + first["next_page_uri"], auth=(ACCOUNT_SID, AUTH_TOKEN)).json()
    assert [m["sid"] for m in second["messages"]] == newest_first[2:4]
    assert (second["page"], second["start"], second["end"]) == (1, 2, 3)
    assert second["previous_page_uri"] == f"{base}?{query}&Page=0&PageToken=PB{newest_first[2]}"
    assert second["next_page_uri"] == f"{base}?{query}&Page=2&PageToken=PA{newest_first[3]}"
    third = httpx.get(sim.url + second["next_page_uri"], auth=(ACCOUNT_SID, AUTH_TOKEN)).json()
    assert [m["sid"] for m in third["messages"]] == newest_first[4:]
    assert (third["page"], third["start"], third["end"], third["next_page_uri"]) == (2, 4, 4, None)
    back = httpx.get(sim.url + second["previous_page_uri"], auth=(ACCOUNT_SID, AUTH_TOKEN)).json()
    assert [m["sid"] for m in back["messages"]] == newest_first[:2]
    assert back["previous_page_uri"] is None

    bad = sim.get(base, PageToken="PASMnope")
    assert (bad.status_code, bad.json()["code"]) == (400, 20001)


def test_fetch(sim: Sim, client: Any) -> None:
    msg = client.messages.create(to="+14155550177", from_=FROM, body="fetch me é")
    fetched = client.messages(msg.sid).fetch()
    fields = ("sid", "to", "from_", "body", "account_sid", "date_created", "num_segments", "uri")
    assert [getattr(fetched, f) for f in fields] == [getattr(msg, f) for f in fields]
    assert fetched.status in ("queued", "sent", "delivered")

    unknown = "SM" + "0" * 32
    with pytest.raises(TwilioRestException) as caught:
        client.messages(unknown).fetch()
    assert (caught.value.status, caught.value.code) == (404, 20404)
    assert f"{API}/Messages/{unknown}.json was not found" in caught.value.msg


def test_delete(sim: Sim, client: Any) -> None:
    """Twilio's Message DELETE (erasure): 204, the message is gone from the account and
    the ledger (GET 404); unknown: 404; a message not final yet cannot be deleted."""
    msg = client.messages.create(to="+15005550013", from_=FROM, body="forget me")
    deadline = time.monotonic() + 10
    while client.messages(msg.sid).fetch().status != "sent":
        assert time.monotonic() < deadline, "never sent"
        time.sleep(0.05)
    assert client.messages(msg.sid).delete() is True
    with pytest.raises(TwilioRestException) as caught:
        client.messages(msg.sid).fetch()
    assert caught.value.status == 404
    assert msg.sid not in {m["sid"] for m in sim.ledger()}
    assert client.messages.list(to="+15005550013") == []
    with pytest.raises(TwilioRestException) as caught:
        client.messages(msg.sid).delete()
    assert caught.value.status == 404


def test_messaging_service(sim: Sim, receiver: Receiver, client: Any) -> None:
    service = "MG" + "a" * 32
    path = callback_path()
    msg = client.messages.create(
        to="+14155550188",
        messaging_service_sid=service,
        body="via a service",
        status_callback=receiver.base_url + path,
    )
    assert (msg.status, msg.from_, msg.num_segments, msg.messaging_service_sid) == (
        "accepted",
        None,
        "0",
        service,
    )
    calls = receiver.wait(path, 3)
    assert [c.status for c in calls] == ["queued", "sent", "delivered"]
    for call in calls:
        assert call.params == expected_params(msg, call.status, MessagingServiceSid=service)
        assert_signed(call)
    fetched = client.messages(msg.sid).fetch()
    assert (fetched.from_, fetched.num_segments, fetched.status) == (FROM, "1", "delivered")

    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to="+14155550188", messaging_service_sid="MGnope", body="x")
    assert (caught.value.status, caught.value.code) == (400, 21701)


def test_callback_retries(sim: Sim, receiver: Receiver, client: Any) -> None:
    flaky = callback_path("flaky")  # 500 on the first request, then 200
    down = callback_path("down")  # always 503
    dead = f"http://127.0.0.1:{free_port()}/dead"  # nothing listens
    m1 = client.messages.create(
        to="+14155550101", from_=FROM, body="flaky", status_callback=receiver.base_url + flaky
    )
    m2 = client.messages.create(
        to="+15005550012", from_=FROM, body="down", status_callback=receiver.base_url + down
    )
    m3 = client.messages.create(to="+15005550012", from_=FROM, body="dead", status_callback=dead)

    # A failing callback URL does not hold back the message's status.
    deadline = time.monotonic() + 0.8
    while client.messages(m1.sid).fetch().status != "delivered":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert [c.status for c in receiver.calls(flaky)] == ["queued"]

    calls = receiver.wait(flaky, 4)
    assert [c.status for c in calls] == ["queued", "queued", "sent", "delivered"]
    retry_gap = calls[1].at - calls[0].at
    assert 0.9 < retry_gap < 2.0
    # The retry is the same callback: same params, signature and idempotency token.
    assert calls[1].pairs == calls[0].pairs
    assert calls[1].headers["x-twilio-signature"] == calls[0].headers["x-twilio-signature"]
    tokens = [c.headers["i-twilio-idempotency-token"] for c in calls]
    assert tokens[0] == tokens[1] and len(set(tokens)) == 3
    for call in calls:
        assert_signed(call)

    calls = receiver.wait(down, 4)
    assert [c.status for c in calls] == ["queued", "queued", "failed", "failed"]
    assert (
        calls[0].headers["i-twilio-idempotency-token"]
        == calls[1].headers["i-twilio-idempotency-token"]
    )
    sim.wait_log(f"CALLBACK {m2.sid} failed", "HTTP 503", "attempt 2/2, failed, giving up")
    sim.wait_log(f"CALLBACK {m3.sid} failed -> {dead}", "attempt 2/2, failed, giving up")
    time.sleep(0.2)
    assert len(receiver.calls(down)) == 4  # one retry, then it gives up
    assert client.messages(m3.sid).fetch().status == "failed"


def test_health_and_reset(sim: Sim, client: Any) -> None:
    assert httpx.get(f"{sim.url}/_sim/health").json() == {"ok": True}
    client.messages.create(to="+14155550100", from_=FROM, body="one")
    client.messages.create(to="+14155550100", from_=FROM, body="two")
    assert [e["body"] for e in sim.ledger()] == ["one", "two"]
    assert sim.reset() == {"ok": True, "cleared": 2}
    assert sim.ledger() == []
    assert client.messages.list() == []
    missing = httpx.get(f"{sim.url}/2010-04-01/Nope.json")
    assert (missing.status_code, missing.json()["code"]) == (404, 20404)


# ---------------------------------------------------------- chaos knobs (own process)


@pytest.fixture(scope="module")
def chaos_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    s = start_sim(
        tmp_path_factory.mktemp("twilio-sim-chaos"),
        {
            "SIM_TWILIO_FAILURE_RATE": "1.0",
            "SIM_TWILIO_API_ERROR_RATE": "0.5",
            "SIM_TWILIO_SEED": "42",
            "SIM_TWILIO_LATENCY_MS": "100",
            "SIM_TWILIO_RECEIPT_DELAY_MS": "150",
        },
    )
    yield s
    stop_sim(s)


def test_failure_rates_latency_and_reset(chaos_sim: Sim, receiver: Receiver) -> None:
    client = make_client(chaos_sim)
    try:
        created, api_errors = [], 0
        started = time.monotonic()
        for i in range(12):
            try:
                created.append(
                    client.messages.create(to="+14155550100", from_=FROM, body=f"chaos {i}")
                )
            except TwilioRestException as exc:
                assert (exc.status, exc.code) == (500, 20500)
                api_errors += 1
        assert time.monotonic() - started >= 12 * 0.1  # SIM_TWILIO_LATENCY_MS per call
        assert 0 < api_errors < 12
        # A 500 created nothing: the ledger holds exactly the successful creates.
        assert [e["sid"] for e in chaos_sim.ledger()] == [m.sid for m in created]

        # With SIM_TWILIO_FAILURE_RATE=1 every message ends undelivered.
        deadline = time.monotonic() + 5
        pending = {m.sid for m in created}
        while pending:
            assert time.monotonic() < deadline, pending
            for entry in chaos_sim.ledger():
                if entry["status"] == "undelivered":
                    assert entry["error_code"] in CARRIER_ERRORS
                    pending.discard(entry["sid"])
            time.sleep(0.05)
        fetched = client.messages(created[0].sid).fetch()
        assert fetched.status == "undelivered" and fetched.error_code in CARRIER_ERRORS

        # Reset cancels pending callbacks.
        path = callback_path()
        while True:
            try:
                client.messages.create(
                    to="+14155550100",
                    from_=FROM,
                    body="cancelled",
                    status_callback=receiver.base_url + path,
                )
                break
            except TwilioRestException as exc:
                assert exc.status == 500
        assert chaos_sim.reset()["cleared"] == len(created) + 1
        # Nothing arrives for the cancelled message. Observed, not slept on: a message
        # created after the reset, with the same receipt delay, gets its callbacks --
        # and the cancelled one's were due earlier than those.
        later = callback_path()
        while True:
            try:
                client.messages.create(
                    to="+14155550100",
                    from_=FROM,
                    body="after the reset",
                    status_callback=receiver.base_url + later,
                )
                break
            except TwilioRestException as exc:
                assert exc.status == 500
        deadline = time.monotonic() + 5
        while not any(
            c.params.get("MessageStatus") == "undelivered" for c in receiver.calls(later)
        ):
            assert time.monotonic() < deadline, "the later message's final callback never came"
            time.sleep(0.02)
        assert receiver.calls(path) == []
    finally:
        client.http_client.session.close()


def test_client_gone_during_latency_creates_nothing(chaos_sim: Sim) -> None:
    chaos_sim.reset()
    form = urlencode({"To": "+14155550100", "From": FROM, "Body": "gone"}).encode()
    request = (
        f"POST {API}/Messages.json HTTP/1.1\r\nHost: sim\r\nAuthorization: {basic_auth()}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(form)}\r\n\r\n"
    ).encode() + form
    host, port = chaos_sim.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(request)
        time.sleep(0.02)  # within SIM_TWILIO_LATENCY_MS (100)
    chaos_sim.wait_log(f"API POST {API}/Messages.json -> 499", "not handled")
    assert chaos_sim.ledger() == []
    assert sim_stats(chaos_sim) == ZERO_STATS


# ------------------------------------------------------------- stats and the ledger


ZERO_STATS = {
    "creates": 0,
    "api_errors": 0,
    "refused": 0,
    "fetches": 0,
    "deletes": 0,
    "lists": 0,
    "callbacks_sent": 0,
    "callbacks_failed": 0,
    "callbacks_lost": 0,
    "callbacks_pending": 0,
    "duplicate_callback_urls": 0,
}


def sim_stats(sim: Sim) -> dict[str, int]:
    r = httpx.get(f"{sim.url}/_sim/stats")
    assert r.status_code == 200, r.text
    stats: dict[str, int] = r.json()
    return stats


def wait_stats(sim: Sim, timeout: float = 5.0, **expected: int) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        stats = sim_stats(sim)
        if all(stats[k] == v for k, v in expected.items()):
            return stats
        if time.monotonic() > deadline:
            raise AssertionError(f"stats {stats}, wanted {expected}")
        time.sleep(0.02)


def test_stats(sim: Sim, receiver: Receiver, client: Any) -> None:
    assert sim_stats(sim) == ZERO_STATS
    path, gone, down = callback_path(), callback_path("gone"), callback_path("down")
    url = receiver.base_url + path
    first = client.messages.create(to="+14155550100", from_=FROM, body="1", status_callback=url)
    for body in ("2", "3"):  # the same callback URL twice more: one duplicated URL
        client.messages.create(to="+14155550100", from_=FROM, body=body, status_callback=url)
    client.messages.create(
        to="+14155550100", from_=FROM, body="gone", status_callback=receiver.base_url + gone
    )
    client.messages.create(to="+14155550100", from_=FROM, body="no callback")
    with pytest.raises(TwilioRestException):
        client.messages.create(to="+15005550004", from_=FROM, body="refused")
    client.messages(first.sid).fetch()
    with pytest.raises(TwilioRestException):
        client.messages("SM" + "0" * 32).fetch()
    assert len(client.messages.list(limit=2)) == 2

    receiver.wait(path, 9)
    receiver.wait(gone, 3)
    stats = wait_stats(sim, callbacks_sent=9, callbacks_failed=3)  # a 410 is not retried
    assert stats == ZERO_STATS | {
        "creates": 5,
        "refused": 1,
        "fetches": 2,
        "lists": 1,
        "callbacks_sent": 9,
        "callbacks_failed": 3,
        "duplicate_callback_urls": 1,
    }

    # A callback waiting for its retry is pending (and holds back the next one).
    failing = client.messages.create(
        to="+15005550012", from_=FROM, body="down", status_callback=receiver.base_url + down
    )
    stats = wait_stats(sim, callbacks_pending=2)
    assert stats["callbacks_failed"] == 3
    receiver.wait(down, 4, timeout=5)
    stats = wait_stats(sim, callbacks_pending=0, callbacks_failed=5)
    assert (stats["creates"], stats["callbacks_sent"]) == (6, 9)
    assert client.messages(failing.sid).fetch().status == "failed"

    assert sim.reset()["cleared"] == 6
    assert sim_stats(sim) == ZERO_STATS


def test_ledger_paging(sim: Sim, client: Any) -> None:
    created = [
        client.messages.create(to="+14155550100", from_=FROM, body=f"m{i}") for i in range(5)
    ]
    deadline = time.monotonic() + 5
    ledger = sim.ledger()
    while {e["status"] for e in ledger} != {"delivered"}:  # let the statuses settle
        assert time.monotonic() < deadline
        time.sleep(0.02)
        ledger = sim.ledger()
    assert [e["sid"] for e in ledger] == [m.sid for m in created]
    assert all("seq" not in e for e in ledger)

    def page(**params: str) -> httpx.Response:
        return httpx.get(f"{sim.url}/_sim/messages", params=params)

    pages, since = [], 0
    while True:
        r = page(since_seq=str(since), limit="2")
        assert r.status_code == 200
        entries = r.json()
        if not entries:
            break
        pages.append(entries)
        since = entries[-1]["seq"]
    assert [len(p) for p in pages] == [2, 2, 1]
    paged = [e for p in pages for e in p]
    seqs = [e.pop("seq") for e in paged]
    assert paged == ledger
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    assert [e["sid"] for e in page(limit="3").json()] == [m.sid for m in created[:3]]
    assert [e["sid"] for e in page(since_seq=str(seqs[2])).json()] == [m.sid for m in created[3:]]
    for bad in ({"since_seq": "-1"}, {"limit": "0"}, {"limit": "x"}, {"since_seq": "1.5"}):
        r = page(**bad)
        assert (r.status_code, r.json()["code"]) == (400, 20001), bad

    # Sequence numbers go on across a reset, so a reader's cursor stays valid.
    sim.reset()
    after = client.messages.create(to="+14155550100", from_=FROM, body="after reset")
    [entry] = page(since_seq=str(seqs[-1])).json()
    assert (entry["sid"], entry["seq"] > seqs[-1]) == (after.sid, True)
    assert page(since_seq=str(entry["seq"])).json() == []


# -------------------------------------------------------------------- the HTTP server


def raw_exchange(sim: Sim, data: bytes, until: bytes, timeout: float = 5.0) -> bytes:
    """Sends raw bytes; reads until ``until`` was seen (or the server closed)."""
    host, port = sim.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(data)
        got = b""
        while until not in got:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


def basic_auth() -> str:
    return "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()


def test_http_pipelining_head_and_methods(sim: Sim, client: Any) -> None:
    form = urlencode({"To": "+14155550100", "From": FROM, "Body": "pipelined"}).encode()
    create = (
        f"POST {API}/Messages.json HTTP/1.1\r\nHost: sim\r\nAuthorization: {basic_auth()}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(form)}\r\n\r\n"
    ).encode() + form
    requests = (
        b"GET /_sim/health HTTP/1.1\r\nHost: sim\r\n\r\n"
        + create
        + b"HEAD /_sim/health HTTP/1.1\r\nHost: sim\r\n\r\n"
        + b"DELETE "
        + API.encode()
        + b"/Messages.json HTTP/1.1\r\nHost: sim\r\n\r\n"
        + b"GET /_sim/reset HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n\r\n"
    )
    got = raw_exchange(sim, requests, b"\x00never")  # until the server closes
    statuses = re.findall(rb"HTTP/1\.1 [0-9]{3} [^\r]*", got)
    assert statuses == [
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 201 Created",
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 405 Method Not Allowed",
        b"HTTP/1.1 405 Method Not Allowed",
    ]
    assert b'"code":20004' in got and b"Connection: close" in got
    head_answer = got.split(b"HTTP/1.1 ")[3]
    assert b"Content-Length: 11\r\n" in head_answer and head_answer.endswith(b"\r\n\r\n")
    assert [e["body"] for e in sim.ledger()] == ["pipelined"]


def test_http_expect_continue_chunked_and_http10(sim: Sim, client: Any) -> None:
    form = urlencode({"To": "+14155550100", "From": FROM, "Body": "chunked"}).encode()
    head = (
        f"POST {API}/Messages.json HTTP/1.1\r\nHost: sim\r\nAuthorization: {basic_auth()}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nExpect: 100-continue\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    host, port = sim.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(head)
        assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        half = len(form) // 2
        for part in (form[:half], form[half:]):
            s.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        s.sendall(b"0\r\n\r\n")
        answer = b""
        while b'"uri"' not in answer:
            answer += s.recv(65536)
    assert answer.startswith(b"HTTP/1.1 201 Created\r\n")
    assert sim.ledger()[-1]["body"] == "chunked"

    # HTTP/1.0 without keep-alive: one answer, then the server closes.
    got = raw_exchange(sim, b"GET /_sim/health HTTP/1.0\r\n\r\n", b"\x00never")
    assert got.startswith(b"HTTP/1.1 200 OK\r\n") and got.endswith(b'{"ok":true}')
    # Not HTTP: 400, closed.
    got = raw_exchange(sim, b"\x16\x03\x01 not http at all\r\n\r\n", b"\x00never")
    assert got.startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_multipart_create(sim: Sim, client: Any) -> None:
    r = httpx.post(
        f"{sim.url}{API}/Messages.json",
        data={"To": "+14155550100", "From": FROM, "Body": "multipart é"},
        files={"MediaUrl": ("a.txt", b"a file is not a MediaUrl")},
        auth=(ACCOUNT_SID, AUTH_TOKEN),
    )
    assert r.status_code == 201, r.text
    assert (r.json()["body"], r.json()["num_media"]) == ("multipart é", "0")
    # A body of another type carries no fields.
    r = httpx.post(
        f"{sim.url}{API}/Messages.json",
        json={"To": "+14155550100", "From": FROM, "Body": "json"},
        auth=(ACCOUNT_SID, AUTH_TOKEN),
    )
    assert (r.status_code, r.json()["code"]) == (400, 21604)


# ---------------------------------------------- zero receipt delay, quiet logs (own process)


@pytest.fixture(scope="module")
def quiet_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    s = start_sim(
        tmp_path_factory.mktemp("twilio-sim-quiet"),
        {"SIM_TWILIO_RECEIPT_DELAY_MS": "0", "SIM_TWILIO_LOG_REQUESTS": "0"},
    )
    yield s
    stop_sim(s)


def test_zero_receipt_delay_keeps_callback_order(quiet_sim: Sim, receiver: Receiver) -> None:
    paths = [callback_path() for _ in range(40)]
    flaky = callback_path("flaky")
    with httpx.Client(base_url=quiet_sim.url, auth=(ACCOUNT_SID, AUTH_TOKEN)) as http:
        for path in [*paths, flaky]:
            r = http.post(
                f"{API}/Messages.json",
                data={
                    "To": "+14155550100",
                    "From": FROM,
                    "Body": "fast",
                    "StatusCallback": receiver.base_url + path,
                },
            )
            assert r.status_code == 201
    for path in paths:
        calls = receiver.wait(path, 3)
        assert [c.status for c in calls] == ["queued", "sent", "delivered"]
        for call in calls:
            assert_signed(call)
    # The retry of the first callback (1 s later) still comes before the next status.
    calls = receiver.wait(flaky, 4)
    assert [c.status for c in calls] == ["queued", "queued", "sent", "delivered"]
    wait_stats(quiet_sim, callbacks_sent=123, callbacks_pending=0)

    # SIM_TWILIO_LOG_REQUESTS=0: no per-request or per-callback lines at INFO.
    text = quiet_sim.log_path.read_text()
    assert "Twilio simulator ready" in text
    assert "API POST" not in text and "CALLBACK" not in text


# ------------------------------------------------------------- lost callbacks (own process)


@pytest.fixture(scope="module")
def lossy_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    s = start_sim(
        tmp_path_factory.mktemp("twilio-sim-lossy"),
        {
            "SIM_TWILIO_CALLBACK_LOSS_RATE": "0.5",
            "SIM_TWILIO_SEED": "7",
            "SIM_TWILIO_RECEIPT_DELAY_MS": "10",
        },
    )
    yield s
    stop_sim(s)


def test_lost_callbacks(lossy_sim: Sim, receiver: Receiver) -> None:
    client = make_client(lossy_sim)
    try:
        paths = [callback_path() for _ in range(20)]
        created = [
            client.messages.create(
                to="+14155550100", from_=FROM, body="lossy", status_callback=receiver.base_url + p
            )
            for p in paths
        ]
        stats = wait_stats(lossy_sim, callbacks_pending=0, creates=20)
        deadline = time.monotonic() + 5
        while stats["callbacks_sent"] + stats["callbacks_lost"] < 60:
            assert time.monotonic() < deadline, stats
            time.sleep(0.02)
            stats = sim_stats(lossy_sim)
        assert stats["callbacks_failed"] == 0
        assert 0 < stats["callbacks_lost"] < 60
        time.sleep(0.1)
        received = 0
        for msg, path in zip(created, paths, strict=True):
            statuses = [c.status for c in receiver.calls(path)]
            received += len(statuses)
            # What arrives is in order, each status at most once ...
            assert statuses == [s for s in ("queued", "sent", "delivered") if s in statuses]
            # ... and the stored status moved on regardless: a fetch tells the truth.
            assert client.messages(msg.sid).fetch().status == "delivered"
        assert received == stats["callbacks_sent"] == 60 - stats["callbacks_lost"]
    finally:
        client.http_client.session.close()


# ------------------------------------------------------------------- in-process (ASGI)


def test_asgi_app_in_process(receiver: Receiver) -> None:
    config = SimConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, receipt_delay_ms=0)
    app = create_app(config)
    path = callback_path()

    async def main() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as http:
            r = await http.post(
                f"{API}/Messages.json",
                data={
                    "To": "+14155550100",
                    "From": FROM,
                    "Body": "in process",
                    "StatusCallback": receiver.base_url + path,
                },
                auth=(ACCOUNT_SID, AUTH_TOKEN),
            )
            assert r.status_code == 201, r.text
            sid = r.json()["sid"]
            deadline = time.monotonic() + 5
            while len(receiver.calls(path)) < 3:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            fetched = await http.get(f"{API}/Messages/{sid}.json", auth=(ACCOUNT_SID, AUTH_TOKEN))
            assert fetched.json()["status"] == "delivered"
            assert (await http.get("/nope")).json()["code"] == 20404
            assert (await http.get(f"{API}/Messages.json")).status_code == 401
        assert await app.sim.close() == 0

    asyncio.run(main())
    assert [c.status for c in receiver.calls(path)] == ["queued", "sent", "delivered"]
