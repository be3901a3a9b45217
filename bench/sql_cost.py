"""CPU of each hot SQL call, in isolation: one client, no contention, no HTTP.

    uv run python -m bench.sql_cost [--messages 3000] [--batch 10] [--pgss-track none]

A throwaway cluster (the same settings as ``make bench``), migrated, one tenant; then
the send path's SQL calls in the order the system makes them, each phase timed by the
CPU of its backend (``/proc/<pg_backend_pid()>/stat``) and of the whole server
(postmaster and all its children: WAL writer, checkpointer...):

  submit          app.submit_message(token, ...), one transaction a message (it
                  authenticates the key itself)
  dequeue         pgqueuer's dequeue of the send jobs, ``--batch`` at a time
  claim           app.claim_attempts, ``--batch`` attempts a call
  handoff         app.record_handoffs, ``--batch`` a call
  complete        pgqueuer's completion of the jobs (log + delete)
  callbacks       app.record_receipts, the three callbacks of ``--batch`` messages a call
  apply           app.apply_receipts(1000) until the inbox is empty

It answers "what does PostgreSQL spend on one message, by step" without the noise of
a loaded machine, so a change to one function can be measured on its own. The
end-to-end figure stays ``python -m bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

os.environ.setdefault("PGQUEUER_SCHEMA", "pgqueuer")  # read when pgqueuer is imported

from pgqueuer.adapters.drivers.psycopg import PsycopgDriver
from pgqueuer.models import Job
from pgqueuer.ports.repository import EntrypointExecutionParameter
from pgqueuer.queries import Queries
from pgqueuer.types import QueueEntrypoint, QueueManagerId

from bench.openloop import BENCH_POLICY, git_commit
from bench.procstat import CLK_TCK, all_procs, descendants, read_proc
from hermes.cluster import LocalCluster
from hermes.migrate import migrate
from hermes.services import free_port


def backend_ticks(pid: int) -> int:
    t = read_proc(pid)
    return t.own if t else 0


def server_ticks(postmaster: int) -> int:
    procs = all_procs()
    return sum(procs[p].own + procs[p].children for p in descendants([postmaster], procs))


class Meter:
    def __init__(self, conn: psycopg.Connection, postmaster: int) -> None:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        self.backend = int(row[0])
        self.postmaster = postmaster
        self.results: dict[str, dict[str, float]] = {}

    def phase(self, name: str, messages: int, fn: Callable[[], object], extra_backend: int) -> None:
        def backends() -> int:
            return backend_ticks(self.backend) + backend_ticks(extra_backend)

        b0, s0, w0 = backends(), server_ticks(self.postmaster), time.perf_counter()
        fn()
        w1, b1, s1 = time.perf_counter(), backends(), server_ticks(self.postmaster)
        self.results[name] = {
            "backend_ms_per_msg": round((b1 - b0) / CLK_TCK * 1000 / messages, 4),
            "server_ms_per_msg": round((s1 - s0) / CLK_TCK * 1000 / messages, 4),
            "wall_ms_per_msg": round((w1 - w0) * 1000 / messages, 4),
        }
        r = self.results[name]
        print(
            f"  {name:<13} backend {r['backend_ms_per_msg']:7.3f}  server {r['server_ms_per_msg']:7.3f}"
            f"  wall {r['wall_ms_per_msg']:7.3f} ms/msg",
            flush=True,
        )


def run(args: argparse.Namespace) -> dict[str, object]:
    root = Path(tempfile.mkdtemp(prefix="hermes-sqlcost-"))
    settings = {"shared_preload_libraries": "pg_stat_statements"}
    if args.pgss_track != "none":
        settings["pg_stat_statements.track"] = args.pgss_track
    cluster = LocalCluster(
        datadir=root / "pgdata", logfile=root / "postgres.log", port=free_port(), settings=settings
    )
    cluster.start()
    try:
        cluster.ensure_database("hermes")
        dsn = cluster.dsn("hermes")
        migrate(dsn)
        postmaster = cluster.postmaster_pid()
        assert postmaster is not None
        with psycopg.connect(dsn, autocommit=True) as conn:
            if args.pgss_track != "none":
                conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            row = conn.execute(
                "SELECT private.create_tenant(NULL, 'Cost', 'test', '+15005550006')"
            ).fetchone()
            assert row is not None
            created = row[0]
            conn.execute(
                "SELECT private.set_tenant_policy(%s, NULL, %s::jsonb)",
                (created["tenant"]["id"], BENCH_POLICY),
            )
            token = created["api_key"]["token"]
            n, b = args.messages, args.batch
            # a first round warms caches and plans; the second is measured
            for measured in (False, True):
                if measured and args.pgss_track != "none":
                    conn.execute("SELECT pg_stat_statements_reset()")
                meter = Meter(conn, postmaster)
                one_round(conn, meter, token, n if measured else 200, b, dsn)
                if not measured:
                    conn.execute("VACUUM ANALYZE")
                    conn.execute("CHECKPOINT")
                    print("  (warm-up done; measured:)")
            total_backend = sum(r["backend_ms_per_msg"] for r in meter.results.values())
            total_server = sum(r["server_ms_per_msg"] for r in meter.results.values())
            print(
                f"  {'total':<13} backend {total_backend:7.3f}  server {total_server:7.3f} ms/msg"
            )
            statements = top_statements(conn, n) if args.pgss_track != "none" else []
        return {
            "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "messages": args.messages,
            "batch": args.batch,
            "pgss_track": args.pgss_track,
            "phases": meter.results,
            "total_backend_ms_per_msg": round(total_backend, 4),
            "total_server_ms_per_msg": round(total_server, 4),
            "statements": statements,
        }
    finally:
        if args.keep:
            print(f"  cluster kept running: {cluster.dsn('hermes')} (data in {root})")
        else:
            cluster.stop()
            shutil.rmtree(root, ignore_errors=True)


def top_statements(conn: psycopg.Connection, n: int, limit: int = 30) -> list[dict[str, object]]:
    """pg_stat_statements' statements by total time (nested ones included), per message."""
    rows = conn.execute(
        "SELECT calls, total_exec_time, toplevel, regexp_replace(query, '\\s+', ' ', 'g')"
        "  FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT %s",
        (limit,),
    ).fetchall()
    out = []
    for calls, total, top, query in rows:
        per = total / n
        print(
            f"    {per:7.4f} ms/msg {calls:7d} calls {'top   ' if top else 'nested'} {query[:110]}"
        )
        out.append(
            {"calls": calls, "ms_per_msg": round(per, 4), "toplevel": top, "query": query[:300]}
        )
    return out


def one_round(
    conn: psycopg.Connection,
    meter: Meter,
    token: str,
    n: int,
    b: int,
    dsn: str,
) -> None:
    tag = uuid.uuid4().hex[:6]

    def submit() -> None:
        for i in range(n):
            request = {"to": f"+1415{i % 10_000_000:07d}", "body": f"cost {tag} {i}"}
            conn.execute("SELECT app.submit_message(%s, %s, %s)", (token, Jsonb(request), None))

    # pgqueuer's own dequeue and completion, on a connection of their own (async), as
    # the worker runs them; its backend is metered separately and added to the phase.
    jobs: list[tuple[object, str]] = []
    pgq = PgqueuerClient(dsn)

    def dequeue() -> None:
        jobs.extend(pgq.dequeue_all(n, b))

    def claim() -> None:
        for i in range(0, len(jobs), b):
            ids = [json.loads(p)["attempt_id"] for _, p in jobs[i : i + b]]
            conn.execute("SELECT app.claim_attempts(%s::uuid[])", (ids,))

    sids: dict[str, str] = {}

    def handoff() -> None:
        for i in range(0, len(jobs), b):
            batch = []
            for _, p in jobs[i : i + b]:
                a = json.loads(p)["attempt_id"]
                sids[a] = "SM" + uuid.uuid4().hex
                batch.append(
                    {"attempt_id": a, "provider_message_id": sids[a], "provider_status": "queued"}
                )
            conn.execute("SELECT app.record_handoffs(%s)", (Jsonb(batch),))

    def complete() -> None:
        pgq.complete_all(b)

    def callbacks() -> None:
        ids = list(sids)
        for i in range(0, len(ids), b):
            batch = [
                {
                    "provider": "twilio",
                    "attempt_id": a,
                    "provider_message_id": sids[a],
                    "provider_status": status,
                    "payload": {
                        "MessageSid": sids[a],
                        "MessageStatus": status,
                        "To": "+14155550100",
                    },
                }
                for status in ("queued", "sent", "delivered")
                for a in ids[i : i + b]
            ]
            conn.execute("SELECT app.record_receipts(%s)", (Jsonb(batch),))

    def apply() -> None:
        while True:
            row = conn.execute("SELECT app.apply_receipts(1000)").fetchone()
            assert row is not None
            if not row[0].get("applied"):
                break

    try:
        for name, fn in [
            ("submit", submit),
            ("dequeue", dequeue),
            ("claim", claim),
            ("handoff", handoff),
            ("complete", complete),
            ("callbacks", callbacks),
            ("apply", apply),
        ]:
            meter.phase(name, n, fn, extra_backend=pgq.backend)
    finally:
        pgq.close()
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE status <> 'delivered'), count(*) FROM app.messages"
        " WHERE body LIKE %s",
        (f"cost {tag} %",),
    ).fetchone()
    assert row is not None and row[0] == 0 and row[1] == n, f"not all delivered: {row}"


class PgqueuerClient:
    """pgqueuer's Queries (dequeue, log_jobs) on an async connection of its own."""

    def __init__(self, dsn: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.conn = self.loop.run_until_complete(
            psycopg.AsyncConnection.connect(dsn, autocommit=True)
        )
        self.queries = Queries(PsycopgDriver(self.conn))
        self.backend = int(self.loop.run_until_complete(self._pid()))
        self.picked: list[Job] = []

    async def _pid(self) -> int:
        cur = await self.conn.execute("SELECT pg_backend_pid()")
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    def dequeue_all(self, n: int, b: int) -> list[tuple[object, str]]:
        async def go() -> list[Job]:
            got: list[Job] = []
            manager = uuid.uuid4()
            while len(got) < n:
                batch = await self.queries.dequeue(
                    batch_size=b,
                    entrypoints={
                        QueueEntrypoint("send_sms"): EntrypointExecutionParameter(
                            concurrency_limit=0
                        )
                    },
                    queue_manager_id=QueueManagerId(manager),
                    global_concurrency_limit=None,
                    heartbeat_timeout=timedelta(seconds=30),
                )
                if not batch:
                    break
                got.extend(batch)
            return got

        self.picked = self.loop.run_until_complete(go())
        return [(j.id, (j.payload or b"").decode()) for j in self.picked]

    def complete_all(self, b: int) -> None:
        async def go() -> None:
            for i in range(0, len(self.picked), b):
                await self.queries.log_jobs(
                    [(j, "successful", None) for j in self.picked[i : i + b]]
                )

        self.loop.run_until_complete(go())

    def close(self) -> None:
        self.loop.run_until_complete(self.conn.close())
        self.loop.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=3000)
    p.add_argument(
        "--batch", type=int, default=10, help="worker batch size (claims, hand-offs, jobs)"
    )
    p.add_argument("--pgss-track", choices=("all", "top", "none"), default="none")
    p.add_argument("--keep", action="store_true", help="leave the cluster running (to explain)")
    p.add_argument("--results", default=str(Path(__file__).parent / "results" / "sql_cost.jsonl"))
    args = p.parse_args(argv)
    print(
        f"== SQL cost per message, {args.messages} messages, batch {args.batch}, pgss {args.pgss_track}"
    )
    result = run(args)
    result["commit"] = git_commit()
    with open(args.results, "a") as f:
        f.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
