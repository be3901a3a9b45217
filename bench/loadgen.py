"""Open-loop HTTP load generator: ``python -m bench.loadgen '<json Spec>'``.

Requests leave at the times of a fixed schedule (request ``g`` of the whole run at
``g / requests_per_second`` after the start), whether or not earlier ones have been
answered: a slow server sees a growing number of outstanding requests, not a slower
client (no coordinated omission). Each outstanding request holds one keep-alive
HTTP/1.1 connection; connections are opened on demand up to ``max_outstanding``, and
a request due when that cap is reached waits for the next free connection (counted in
``cap_hits``; its latency still counts from its scheduled time).

The client is a few dozen lines of asyncio protocol (pre-formatted request bytes,
Content-Length or chunked responses) on uvloop when available, so it costs little
CPU; it reports its own CPU time (getrusage) over the load window. Several processes
can share one schedule (``processes``/``index``: process ``i`` sends requests
``i, i + n, i + 2n, ...``).

``closed > 0`` turns it into a closed loop of that many connections sending back to
back for ``duration`` seconds: the maximum rate a server sustains.

The parent side is :func:`drive`: start the processes, call back at the start time,
wait, merge their records.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import resource
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import orjson

# Status codes the generator records for requests that got no HTTP answer.
CONNECT_ERROR = 0
TIMEOUT = -1
NOT_SENT = -2

IDLE_REUSE_S = 3.0


@dataclass
class Spec:
    host: str
    port: int
    path: str
    mode: str  # "single": one message a request; "batch": batch_size messages a request
    rate: float  # messages per second offered by all processes together
    duration: float  # seconds of schedule
    start_at: float  # epoch seconds when the schedule starts
    out: str  # where this process writes its records
    token: str | None = None
    batch_size: int = 1
    index: int = 0
    processes: int = 1
    max_outstanding: int = 512
    preopen: int = 16
    timeout: float = 30.0
    closed: int = 0
    label: str = "bench"
    idempotency_keys: bool = False

    @property
    def per_request(self) -> int:
        return self.batch_size if self.mode == "batch" else 1


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class Conn(asyncio.Protocol):
    def __init__(self, gen: Gen) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.k: int | None = None  # the request in flight
        self.idle_since = 0.0
        self._head: tuple[int, int, int | None, bool, bool] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.gen.connected(self)

    def send(self, k: int, data: bytes) -> None:
        assert self.transport is not None
        self.k = k
        self.buf.clear()
        self._head = None
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        done = self._parse()
        if done is None or self.k is None:
            return
        status, body, close = done
        k, self.k = self.k, None
        self.gen.finish(k, status, body)
        if close and self.transport is not None:
            self.transport.close()
        else:
            self.gen.free(self)

    def _parse(self) -> tuple[int, bytes, bool] | None:
        if self._head is None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return None
            lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            length: int | None = None
            chunked = close = False
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "transfer-encoding":
                    chunked = "chunked" in value.lower()
                elif name == "connection":
                    close = value.strip().lower() == "close"
            self._head = (status, end + 4, length, chunked, close)
        status, start, length, chunked, close = self._head
        if not chunked:
            n = length or 0
            if len(self.buf) < start + n:
                return None
            return status, bytes(self.buf[start : start + n]), close
        body = bytearray()
        pos = start
        while True:
            eol = self.buf.find(b"\r\n", pos)
            if eol < 0:
                return None
            size = int(bytes(self.buf[pos:eol]).split(b";")[0], 16)
            if size == 0:
                return (
                    (status, bytes(body), close) if self.buf.find(b"\r\n", eol + 2) >= 0 else None
                )
            if len(self.buf) < eol + 2 + size + 2:
                return None
            body += self.buf[eol + 2 : eol + 2 + size]
            pos = eol + 2 + size + 2

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002
        self.gen.lost(self)


@dataclass
class Records:
    sched: list[float] = field(default_factory=list)  # s after the start: when it was due
    send: list[float] = field(default_factory=list)  # when it was written (-1: never)
    done: list[float] = field(default_factory=list)  # when its answer was complete
    status: list[int] = field(default_factory=list)
    accepted: list[int] = field(default_factory=list)  # messages accepted (201)
    rejected: list[int] = field(default_factory=list)  # batch items refused (e.g. 422)
    ids: list[str] = field(default_factory=list)  # every accepted message id


class Gen:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.loop = asyncio.get_running_loop()
        self.t0 = 0.0
        self.r = Records()
        self.conns: set[Conn] = set()
        self.idle: list[Conn] = []
        self.connecting = 0
        self.pending: deque[int] = deque()
        self.outstanding = 0  # launched, not answered
        self.unanswered = 0
        self.cap_hits = 0
        self.max_outstanding_seen = 0
        self.max_queued = 0  # most requests waiting for a connection at once (cap reached)
        self.connections_opened = 0
        self.errors: list[str] = []
        self.all_done = asyncio.Event()
        self.closing = False
        self.stop_closed_at = float("inf")
        self._g: list[int] = []  # request number (of the whole run) of each record
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed_g = spec.index * 10_000_000
        auth = f"Authorization: Bearer {spec.token}\r\n" if spec.token else ""
        self.head = (
            f"POST {spec.path} HTTP/1.1\r\nHost: {spec.host}:{spec.port}\r\n{auth}"
            "Content-Type: application/json\r\n"
        ).encode()

    def now(self) -> float:
        return self.loop.time() - self.t0

    # ----------------------------------------------------------------- requests

    def body(self, g: int) -> tuple[bytes, bytes]:
        """(extra headers, body) of request number g of the whole run."""
        s = self.spec
        if s.mode == "single":
            extra = f"Idempotency-Key: {s.label}-{g}\r\n".encode() if s.idempotency_keys else b""
            return extra, b'{"to":"+1628555%04d","body":"%s %d"}' % (
                g % 10000,
                s.label.encode(),
                g,
            )
        items: list[dict[str, str]] = []
        for j in range(s.batch_size):
            m = g * s.batch_size + j
            item = {"to": f"+1628555{m % 10000:04d}", "body": f"{s.label} {m}"}
            if s.idempotency_keys:
                item["idempotency_key"] = f"{s.label}-{m}"
            items.append(item)
        return b"", orjson.dumps({"messages": items})

    def launch(self, g: int) -> None:
        k = len(self.r.sched)
        r = self.r
        r.sched.append(self.now())
        r.send.append(-1.0)
        r.done.append(-1.0)
        r.status.append(NOT_SENT)
        r.accepted.append(0)
        r.rejected.append(0)
        self._g.append(g)
        self.outstanding += 1
        self.unanswered += 1
        self.max_outstanding_seen = max(self.max_outstanding_seen, self.outstanding)
        conn = self._idle_conn()
        if conn is not None:
            self._write(conn, k)
            return
        self.pending.append(k)
        if len(self.conns) + self.connecting < self.spec.max_outstanding:
            self.open()
        else:
            self.cap_hits += 1
            self.max_queued = max(self.max_queued, len(self.pending))

    def _idle_conn(self) -> Conn | None:
        """The most recently used idle connection; idle ones older than
        IDLE_REUSE_S are closed first (the server may be closing them: uvicorn drops
        keep-alive connections after 5 s, and a request written into that race
        would fail for the client's sake)."""
        if not self.idle:
            return None
        conn = self.idle.pop()
        if self.now() - conn.idle_since < IDLE_REUSE_S:
            return conn
        for stale in [conn, *self.idle]:
            if stale.transport is not None:
                stale.transport.close()
        self.idle.clear()
        return None

    def _write(self, conn: Conn, k: int) -> None:
        extra, body = self.body(self._g[k])
        self.r.send[k] = self.now()
        conn.send(k, self.head + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def open(self) -> None:
        self.connecting += 1
        self.connections_opened += 1
        task = self.loop.create_task(self._connect())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self) -> None:
        try:
            await self.loop.create_connection(lambda: Conn(self), self.spec.host, self.spec.port)
        except OSError as exc:
            self.connecting -= 1
            if len(self.errors) < 5:
                self.errors.append(f"connect: {exc}")
            if self.pending:
                self.finish(self.pending.popleft(), CONNECT_ERROR, b"")

    # -------------------------------------------------------------- connections

    def connected(self, conn: Conn) -> None:
        self.connecting -= 1
        self.conns.add(conn)
        self.free(conn)

    def free(self, conn: Conn) -> None:
        if self.pending:
            self._write(conn, self.pending.popleft())
        else:
            conn.idle_since = self.now()
            self.idle.append(conn)

    def lost(self, conn: Conn) -> None:
        self.conns.discard(conn)
        if conn in self.idle:
            self.idle.remove(conn)
        if conn.k is not None:
            k, conn.k = conn.k, None
            self.finish(k, CONNECT_ERROR, b"")
        if self.pending and len(self.conns) + self.connecting < self.spec.max_outstanding:
            self.open()

    def finish(self, k: int, status: int, body: bytes) -> None:
        r = self.r
        if r.done[k] >= 0:
            return
        r.done[k] = self.now()
        r.status[k] = status
        self.outstanding -= 1
        self.unanswered -= 1
        try:
            if status == 201 and self.spec.mode == "single":
                r.ids.append(orjson.loads(body)["id"])
                r.accepted[k] = 1
            elif status in (200, 201) and self.spec.mode == "batch":
                for item in orjson.loads(body)["results"]:
                    if item.get("status") == 201:
                        r.ids.append(item["message"]["id"])
                        r.accepted[k] += 1
                    else:
                        r.rejected[k] += 1
            elif status > 0 and len(self.errors) < 5:
                self.errors.append(f"HTTP {status}: {body[:300].decode('utf-8', 'replace')}")
        except (ValueError, KeyError, TypeError) as exc:
            if len(self.errors) < 5:
                self.errors.append(f"HTTP {status}, unreadable answer ({exc}): {body[:200]!r}")
        if self.spec.closed and not self.closing and self.now() < self.stop_closed_at:
            self.launch(self._next_g())
        if self.unanswered == 0 and self.closing:
            self.all_done.set()

    def _next_g(self) -> int:
        g = self._closed_g
        self._closed_g += 1
        return g

    async def watchdog(self) -> None:
        """Answers that take longer than the timeout end the connection (status -1)."""
        while True:
            await asyncio.sleep(0.5)
            limit = self.now() - self.spec.timeout
            for conn in list(self.conns):
                if conn.k is not None and 0 <= self.r.send[conn.k] < limit:
                    k, conn.k = conn.k, None
                    self.finish(k, TIMEOUT, b"")
                    if conn.transport is not None:
                        conn.transport.abort()

    # ---------------------------------------------------------------------- run

    async def run(self) -> dict[str, Any]:
        s = self.spec
        for _ in range(min(s.preopen, s.max_outstanding)):
            self.open()
        delay = s.start_at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        cpu0 = _cpu()
        self.t0 = self.loop.time()
        watchdog = self.loop.create_task(self.watchdog())
        if s.closed:
            self.stop_closed_at = s.duration
            for _ in range(s.closed):
                self.launch(self._next_g())
            await asyncio.sleep(s.duration)
        else:
            per_second = s.rate / s.per_request
            total = int(s.duration * per_second)
            due = [g / per_second for g in range(s.index, total, s.processes)]
            gs = list(range(s.index, total, s.processes))
            i = 0
            while i < len(due):
                now = self.now()
                while i < len(due) and due[i] <= now:
                    self.launch(gs[i])
                    self.r.sched[-1] = due[i]
                    i += 1
                if i < len(due):
                    await asyncio.sleep(max(0.0, due[i] - self.now()))
            # The window is the whole duration, also when the last request is due earlier.
            await asyncio.sleep(max(0.0, s.duration - self.now()))
        schedule_end = self.now()
        self.closing = True
        if self.unanswered:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.all_done.wait(), timeout=2 * s.timeout + 5)
        for k in list(self.pending):
            self.finish(k, NOT_SENT, b"")
        for conn in list(self.conns):
            if conn.k is not None:
                k, conn.k = conn.k, None
                self.finish(k, TIMEOUT, b"")
        watchdog.cancel()
        cpu = _cpu() - cpu0
        wall = self.now()
        for conn in list(self.conns):
            if conn.transport is not None:
                conn.transport.close()
        return {
            "index": s.index,
            "t0_epoch": s.start_at,
            "schedule_end_s": round(schedule_end, 4),
            "wall_s": round(wall, 4),
            "cpu_s": round(cpu, 4),
            "cap_hits": self.cap_hits,
            "max_outstanding_seen": self.max_outstanding_seen,
            "max_queued": self.max_queued,
            "connections_opened": self.connections_opened,
            "errors": self.errors,
            **asdict(self.r),
        }


async def _main(spec: Spec) -> dict[str, Any]:
    return await Gen(spec).run()


def main() -> None:
    spec = Spec(**json.loads(sys.argv[1]))
    gc.set_threshold(100_000, 50, 100)
    try:
        import uvloop

        result = uvloop.run(_main(spec))
    except ImportError:
        result = asyncio.run(_main(spec))
    Path(spec.out).write_bytes(orjson.dumps(result))


# --------------------------------------------------------------------- parent side


@dataclass
class LoadResult:
    spec: Spec
    processes: int
    t0_epoch: float
    records: Records
    cpu_s: float  # the generator processes' CPU over the load window
    wall_s: float
    cap_hits: int
    max_outstanding_seen: int
    max_queued: int
    connections_opened: int
    errors: list[str]

    def summary(self) -> dict[str, Any]:
        return {
            "processes": self.processes,
            "cpu_s": round(self.cpu_s, 3),
            "cap": self.spec.max_outstanding,
            "cap_hits": self.cap_hits,
            "max_outstanding_seen": self.max_outstanding_seen,
            "max_queued_behind_cap": self.max_queued,
            "connections_opened": self.connections_opened,
            "errors": self.errors,
        }


def drive(
    spec: Spec,
    processes: int,
    workdir: Path,
    on_start: Callable[[float], None] | None = None,
    lead_s: float = 1.5,
) -> LoadResult:
    """Run the schedule in ``processes`` generator processes; call ``on_start`` with
    the start time (epoch s) when it comes (the processes are up and connected by
    then) and return their merged records once all have finished."""
    workdir.mkdir(parents=True, exist_ok=True)
    start_at = time.time() + lead_s
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    for i in range(processes):
        out = workdir / f"load-{i}.json"
        out.unlink(missing_ok=True)
        s = Spec(**(asdict(spec) | {"index": i, "processes": processes, "start_at": start_at}))
        s.out = str(out)
        argv = [sys.executable, "-m", "bench.loadgen", json.dumps(asdict(s))]
        procs.append((subprocess.Popen(argv), out))
    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    if on_start is not None:
        on_start(start_at)
    merged = Records()
    cpu = wall = 0.0
    cap_hits = max_seen = max_queued = opened = 0
    errors: list[str] = []
    for proc, out in procs:
        if proc.wait() != 0:
            raise RuntimeError(f"load generator exited with {proc.returncode}")
        part = orjson.loads(out.read_bytes())
        for name in ("sched", "send", "done", "status", "accepted", "rejected", "ids"):
            getattr(merged, name).extend(part[name])
        cpu += part["cpu_s"]
        wall = max(wall, part["wall_s"])
        cap_hits += part["cap_hits"]
        max_seen += part["max_outstanding_seen"]
        max_queued += part["max_queued"]
        opened += part["connections_opened"]
        errors += part["errors"]
        out.unlink()
    return LoadResult(
        spec,
        processes,
        start_at,
        merged,
        cpu,
        wall,
        cap_hits,
        max_seen,
        max_queued,
        opened,
        errors[:5],
    )


if __name__ == "__main__":
    main()
