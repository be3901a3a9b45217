"""CPU cost of the Twilio simulator per message (one create + its three status callbacks).

    uv run python -m bench.simulator_cost [--rate 1000] [--seconds 20] [--json]

Three processes besides this one, so that only the simulator's own work is measured:

- the simulator, ``python -m simulators.twilio`` with ``SIM_TWILIO_RECEIPT_DELAY_MS=0``,
  ``SIM_TWILIO_LATENCY_MS=0`` and ``SIM_TWILIO_LOG_REQUESTS=0``;
- a callback sink (raw asyncio + httptools on uvloop) that answers every POST with 204,
  checks each callback with the twilio SDK's ``RequestValidator`` and its Content-Type,
  and records the statuses each callback URL received;
- a load generator that sends creates (Basic auth, form body ``To``, ``From``, ``Body``,
  ``StatusCallback`` = the sink with a path of its own per message) at a fixed,
  open-loop rate over a pool of keep-alive connections.

The simulator's CPU (utime + stime from ``/proc/<pid>/stat``) is read just before the
load starts and again once every callback has reached the sink (or the drain timeout
passed); the difference divided by the creates answered 201 is the figure of merit.
The run fails (exit 1) unless every message got exactly ``queued``, ``sent``,
``delivered``, in that order, validly signed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode

import httptools
import httpx
import uvloop
from twilio.request_validator import RequestValidator

from hermes.services import free_port

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT_SID = "AC" + "b3" * 16
AUTH_TOKEN = "bench-auth-token-5e1d"
FROM = "+15005550006"
STATUSES = ["queued", "sent", "delivered"]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# ------------------------------------------------------------------------------ sink


class Sink:
    """What the callbacks brought: statuses per callback target, and the checks."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.validator = RequestValidator(AUTH_TOKEN)
        self.paths: dict[str, list[str]] = {}
        self.tokens: set[bytes] = set()
        self.received = 0
        self.bad_signature = 0
        self.bad_content_type = 0
        self.first_at = 0.0
        self.last_at = 0.0

    def record(self, target: str, headers: dict[bytes, bytes], body: bytes) -> None:
        now = time.monotonic()
        if not self.received:
            self.first_at = now
        self.last_at = now
        self.received += 1
        params = dict(parse_qsl(body.decode(), keep_blank_values=True))
        if headers.get(b"content-type") != b"application/x-www-form-urlencoded":
            self.bad_content_type += 1
        signature = headers.get(b"x-twilio-signature", b"").decode()
        if not self.validator.validate(self.base_url + target, params, signature):
            self.bad_signature += 1
        self.tokens.add(headers.get(b"i-twilio-idempotency-token", b""))
        self.paths.setdefault(target, []).append(params.get("MessageStatus", "?"))

    def summary(self) -> dict[str, Any]:
        complete = sum(1 for s in self.paths.values() if s == STATUSES)
        return {
            "received": self.received,
            "paths": len(self.paths),
            "complete": complete,
            "not_complete": len(self.paths) - complete,
            "distinct_tokens": len(self.tokens),
            "bad_signature": self.bad_signature,
            "bad_content_type": self.bad_content_type,
            "first_at": self.first_at,
            "last_at": self.last_at,
        }


class _SinkProtocol(asyncio.Protocol):
    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.headers: dict[bytes, bytes] = {}
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = {}
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self.transport is not None
        if self.parser.get_method() == b"POST":
            self.sink.record(self.url.decode(), self.headers, b"".join(self.body))
            self.transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        else:
            payload = json.dumps(self.sink.summary()).encode()
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload)
            )
        if not self.parser.should_keep_alive():
            self.transport.close()


async def run_sink(port: int) -> None:
    sink = Sink(f"http://127.0.0.1:{port}")
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _SinkProtocol(sink), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


# ------------------------------------------------------------------------------ load


class _LoadConnection(asyncio.Protocol):
    def __init__(self, load: Load) -> None:
        self.load = load
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.started = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        self.load.answered(self, self.parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002
        self.load.lost(self)

    def send(self, request: bytes) -> None:
        assert self.transport is not None
        self.started = time.monotonic()
        self.transport.write(request)


class Load:
    """Open-loop creates: request i leaves at t0 + i / rate (or as soon as a connection
    is free, if all are busy; ``max_backlog`` tells whether that happened)."""

    def __init__(self, sim_port: int, sink_port: int, rate: float, total: int) -> None:
        self.sim_port = sim_port
        self.sink_port = sink_port
        self.rate = rate
        self.total = total
        self.run_id = uuid.uuid4().hex[:8]
        auth = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        self.head = (
            f"POST /2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{sim_port}\r\nAuthorization: Basic {auth}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
        ).encode()
        self.idle: list[_LoadConnection] = []
        self.backlog: collections.deque[bytes] = collections.deque()
        self.max_backlog = 0
        self.statuses: collections.Counter[int] = collections.Counter()
        self.latencies: list[float] = []
        self.lost_connections = 0
        self.outstanding = 0
        self.last_answer_at = 0.0
        self.all_answered = asyncio.Event()

    def request(self, i: int) -> bytes:
        body = urlencode(
            {
                "To": f"+1415555{i % 10000:04d}",
                "From": FROM,
                "Body": f"bench message {i}",
                "StatusCallback": (f"http://127.0.0.1:{self.sink_port}/cb/{self.run_id}/{i}?n={i}"),
            }
        ).encode()
        return self.head + b"Content-Length: %d\r\n\r\n%s" % (len(body), body)

    def answered(self, conn: _LoadConnection, status: int) -> None:
        self.last_answer_at = time.monotonic()
        self.latencies.append(self.last_answer_at - conn.started)
        self.statuses[status] += 1
        self.outstanding -= 1
        if self.backlog:
            conn.send(self.backlog.popleft())
        else:
            self.idle.append(conn)
        if self.outstanding == 0 and not self.backlog:
            self.all_answered.set()

    def lost(self, conn: _LoadConnection) -> None:
        self.lost_connections += 1
        with contextlib.suppress(ValueError):
            self.idle.remove(conn)

    def send(self, request: bytes) -> None:
        self.outstanding += 1
        self.all_answered.clear()
        if self.idle:
            self.idle.pop().send(request)
        else:
            self.backlog.append(request)
            self.max_backlog = max(self.max_backlog, len(self.backlog))

    async def run(self, connections: int) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        for _ in range(connections):
            _, conn = await loop.create_connection(
                lambda: _LoadConnection(self), "127.0.0.1", self.sim_port
            )
            self.idle.append(conn)
        requests = [self.request(i) for i in range(self.total)]
        t0 = time.monotonic()
        sent = 0
        while sent < self.total:
            due = min(self.total, int((time.monotonic() - t0) * self.rate) + 1)
            while sent < due:
                self.send(requests[sent])
                sent += 1
            await asyncio.sleep(0.001)
        send_seconds = time.monotonic() - t0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.all_answered.wait(), timeout=60)
        lat = sorted(self.latencies) or [0.0]
        return {
            "sent": sent,
            "send_seconds": send_seconds,
            "answer_seconds": max(self.last_answer_at - t0, 1e-9),
            "answered": len(self.latencies),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "latency_p50_ms": lat[len(lat) // 2] * 1000,
            "latency_p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
            "latency_max_ms": lat[-1] * 1000,
            "max_backlog": self.max_backlog,
            "lost_connections": self.lost_connections,
        }


async def run_load(sim_port: int, sink_port: int, rate: float, total: int, conns: int) -> None:
    result = await Load(sim_port, sink_port, rate, total).run(conns)
    print(json.dumps(result), flush=True)


# ------------------------------------------------------------------------ orchestrate


def _wait_http(url: str, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + 20
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited ({proc.returncode}):\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start:\n{log.read_text()}")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def measure(
    rate: float, seconds: float, connections: int, drain_timeout: float, profile: str | None
) -> dict[str, Any]:
    total = int(rate * seconds)
    sim_port, sink_port = free_port(), free_port()
    sim_url, sink_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{sink_port}"
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("SIM_TWILIO_", "TWILIO_"))}
    sim_env = base_env | {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "SIM_TWILIO_RECEIPT_DELAY_MS": "0",
        "SIM_TWILIO_LATENCY_MS": "0",
        "SIM_TWILIO_LOG_REQUESTS": "0",
    }
    me = [sys.executable, "-m", "bench.simulator_cost"]
    with tempfile.TemporaryDirectory(prefix="sim-cost-") as tmp:
        sim_log, sink_log = Path(tmp) / "sim.log", Path(tmp) / "sink.log"
        with sink_log.open("wb") as out:
            sink = subprocess.Popen(
                [*me, "--role", "sink", "--sink-port", str(sink_port)],
                cwd=ROOT,
                env=base_env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        sim_argv = [sys.executable, "-m", "simulators.twilio", "--port", str(sim_port)]
        if profile:
            sim_argv[1:1] = ["-m", "cProfile", "-o", profile]
        with sim_log.open("wb") as out:
            sim = subprocess.Popen(
                sim_argv,
                cwd=ROOT,
                env=sim_env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_http(f"{sink_url}/stats", sink, "sink", sink_log)
            _wait_http(f"{sim_url}/_sim/health", sim, "simulator", sim_log)
            sim_cpu0, sink_cpu0, t0 = cpu_seconds(sim.pid), cpu_seconds(sink.pid), time.monotonic()
            load_args = ["--sim-port", str(sim_port), "--sink-port", str(sink_port)]
            load_args += ["--rate", str(rate), "--total", str(total)]
            load_args += ["--connections", str(connections)]
            load_proc = subprocess.Popen(
                [*me, "--role", "load", *load_args], cwd=ROOT, env=base_env, stdout=subprocess.PIPE
            )
            load_out, _ = load_proc.communicate()
            load_cpu = _children_cpu_seconds()
            load = json.loads(load_out)
            created = load["statuses"].get("201", 0)
            deadline = time.monotonic() + drain_timeout
            while True:
                got = httpx.get(f"{sink_url}/stats").json()
                if got["received"] >= 3 * created or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            time.sleep(0.3)  # anything beyond the expected callbacks shows up too
            got = httpx.get(f"{sink_url}/stats").json()
            sim_cpu = cpu_seconds(sim.pid) - sim_cpu0
            sink_cpu = cpu_seconds(sink.pid) - sink_cpu0
            wall = time.monotonic() - t0
            stats_resp = httpx.get(f"{sim_url}/_sim/stats")
            sim_stats = stats_resp.json() if stats_resp.status_code == 200 else None
            sim_rss = rss_mib(sim.pid)
        finally:
            _stop(sim)
            _stop(sink)
    callback_seconds = max(got["last_at"] - got["first_at"], 1e-9)
    per_message = created or 1
    ok = (
        created == total
        and got["complete"] == created
        and got["received"] == 3 * created
        and got["not_complete"] == 0
        and got["distinct_tokens"] == got["received"]
        and got["bad_signature"] == 0
        and got["bad_content_type"] == 0
    )
    return {
        "ok": ok,
        "rate_target": rate,
        "seconds": seconds,
        "creates_sent": load["sent"],
        "creates_201": created,
        "create_statuses": load["statuses"],
        "creates_per_s": round(load["answered"] / load["answer_seconds"], 1),
        "create_latency_p50_ms": round(load["latency_p50_ms"], 2),
        "create_latency_p99_ms": round(load["latency_p99_ms"], 2),
        "create_latency_max_ms": round(load["latency_max_ms"], 2),
        "load_max_backlog": load["max_backlog"],
        "callbacks_received": got["received"],
        "callbacks_per_s": round(got["received"] / callback_seconds, 1),
        "messages_complete": got["complete"],
        "messages_not_complete": got["not_complete"],
        "bad_signature": got["bad_signature"],
        "bad_content_type": got["bad_content_type"],
        "distinct_idempotency_tokens": got["distinct_tokens"],
        "sim_cpu_s": round(sim_cpu, 3),
        "sim_cpu_ms_per_message": round(sim_cpu * 1000 / per_message, 4),
        "sim_cpu_share_of_a_core": round(sim_cpu / wall, 3),
        "sim_rss_mib": round(sim_rss, 1),
        "sink_cpu_ms_per_message": round(sink_cpu * 1000 / per_message, 4),
        "load_cpu_ms_per_message": round(load_cpu * 1000 / per_message, 4),
        "wall_s": round(wall, 2),
        "sim_stats": sim_stats,
    }


def _children_cpu_seconds() -> float:
    """CPU of this process's waited-for children so far (here: the load generator)."""
    times = os.times()
    return times.children_user + times.children_system


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.simulator_cost", description=__doc__)
    parser.add_argument("--rate", type=float, default=1000.0, help="creates per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to send")
    parser.add_argument("--connections", type=int, default=64, help="load keep-alive pool")
    parser.add_argument("--drain-timeout", type=float, default=60.0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--profile", metavar="PATH", help="run the simulator under cProfile, stats to PATH"
    )
    parser.add_argument("--role", choices=["run", "sink", "load"], default="run")
    parser.add_argument("--sim-port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--sink-port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--total", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.role == "sink":
        uvloop.run(run_sink(args.sink_port))
        return
    if args.role == "load":
        uvloop.run(run_load(args.sim_port, args.sink_port, args.rate, args.total, args.connections))
        return

    result = measure(args.rate, args.seconds, args.connections, args.drain_timeout, args.profile)
    if args.json:
        print(json.dumps(result))
    else:
        width = max(len(k) for k in result)
        for key, value in result.items():
            print(f"{key:<{width}}  {value}")
    if not result["ok"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
