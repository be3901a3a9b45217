"""Open-loop benchmark of Hermes, with its harness measured apart and a baseline.

    uv run python -m bench [--rate 1000] [--duration 300] [--mode single|batch] [--quick]

One run, on a throwaway cluster (.hermes/bench-pgdata, tuned by hermes.cluster for
this machine, plus pg_stat_statements):

1. baselines (bench.baseline): a FastAPI app doing one INSERT a request under the same
   open-loop load, and a pgqueuer no-op drain;
2. the Hermes stack (hermes.services.stack_specs: PostgREST, API, workers, Twilio
   simulator at zero latency and zero receipt delay), a warm-up, then the open-loop
   load (bench.loadgen) for --duration seconds and a drain until every accepted
   message is terminal (or --drain seconds passed);
3. CPU seconds per process group from /proc at the start and end of the load and at
   the end of the drain; Hermes's CPU-ms per delivered message; a loss check; the
   top statements; the cluster settings.

Appends one JSON line to bench/results/<name>.jsonl, writes
bench/results/<name>-<mode>.png, prints a summary. See bench/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench import baseline, loadgen, procstat
from hermes.cluster import LocalCluster, cpu_count, memory_bytes
from hermes.migrate import migrate
from hermes.services import STATE, ServiceSpec, StackConfig, Supervisor, free_port, stack_specs

RESULTS = Path(__file__).resolve().parent / "results"
TERMINAL = ("delivered", "undelivered", "failed", "rejected", "unknown")
SETTINGS = (
    "server_version",
    "shared_buffers",
    "effective_cache_size",
    "work_mem",
    "maintenance_work_mem",
    "wal_buffers",
    "max_wal_size",
    "min_wal_size",
    "checkpoint_timeout",
    "checkpoint_completion_target",
    "wal_compression",
    "synchronous_commit",
    "fsync",
    "full_page_writes",
    "commit_delay",
    "max_connections",
    "max_worker_processes",
    "max_parallel_workers_per_gather",
    "random_page_cost",
    "effective_io_concurrency",
    "huge_pages",
    "shared_preload_libraries",
    "pg_stat_statements.track",
)
PGSS = {
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track": "all",
    "pg_stat_statements.max": "10000",
}
HERMES_GROUPS = ("postgresql", "api", "workers", "postgrest")
HARNESS_GROUPS = ("simulator", "loadgen", "bench", "monitor")


# --------------------------------------------------------------------------- options


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--rate", type=float, help="messages per second offered (1000; --quick 300)")
    p.add_argument("--duration", type=float, help="seconds of load (300; --quick 20)")
    p.add_argument("--drain", type=float, help="seconds to wait for terminal (120; --quick 60)")
    p.add_argument("--quick", action="store_true", help="rate 300 for 20 s, shorter drain")
    p.add_argument("--mode", choices=("single", "batch"), default="single")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--workers", type=int, help="worker processes (hermes.services' default)")
    p.add_argument("--api-processes", type=int, help="uvicorn processes of the command API")
    p.add_argument("--load-processes", type=int, default=1, help="load generator processes")
    p.add_argument("--max-outstanding", type=int, default=512, help="cap of open requests")
    p.add_argument("--timeout", type=float, default=30.0, help="request timeout (s)")
    p.add_argument("--idempotency-keys", action="store_true", help="send one with each message")
    p.add_argument("--baseline-duration", type=float, help="s (duration/10 within 10..30)")
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument(
        "--no-receiver",
        action="store_true",
        help="status callbacks to the API processes, not to a receiver process of their own",
    )
    p.add_argument(
        "--pgss-track",
        choices=("all", "top", "none"),
        default="all",
        help="pg_stat_statements.track: all (statements inside functions too), top, none",
    )
    p.add_argument("--pgq-jobs", type=int, default=20000)
    p.add_argument("--name", default="openloop", help="results file name (openloop)")
    p.add_argument("--results-dir", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    defaults = _stack_defaults()
    args.rate = args.rate or (300.0 if args.quick else 1000.0)
    args.duration = args.duration or (20.0 if args.quick else 300.0)
    args.drain = args.drain if args.drain is not None else (60.0 if args.quick else 120.0)
    args.workers = args.workers or defaults["workers"]
    args.api_processes = args.api_processes or defaults["api_processes"]
    if args.baseline_duration is None:
        args.baseline_duration = max(10.0, min(30.0, args.duration / 10))
    if args.mode == "single":
        args.batch_size = 1
    return args


def _stack_defaults() -> dict[str, int]:
    fields = {f.name: f for f in dataclasses.fields(StackConfig)}

    def default(name: str) -> int | None:
        f = fields.get(name)
        if f is None:
            return None
        value = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        return value if isinstance(value, int) else None

    api = default("api_processes") or default("api_workers") or 1
    return {"workers": default("workers") or 1, "api_processes": api}


# --------------------------------------------------------------------------- cluster


def start_cluster(notes: list[str], track: str) -> tuple[LocalCluster, bool]:
    """A fresh, tuned cluster with pg_stat_statements preloaded if the server has it."""
    datadir = STATE / "bench-pgdata"
    settings = PGSS | {"pg_stat_statements.track": track} if track != "none" else {}
    cluster = LocalCluster(
        datadir=datadir, logfile=STATE / "bench-postgres.log", port=free_port(), settings=settings
    )
    if datadir.exists():
        shutil.rmtree(datadir, ignore_errors=True)
    if not settings:
        cluster.start()
        return cluster, False
    try:
        cluster.start()
        return cluster, True
    except subprocess.CalledProcessError:
        notes.append("pg_stat_statements could not be preloaded: top statements skipped")
    cluster = dataclasses.replace(cluster, settings={})
    cluster.start()
    return cluster, False


def read_settings(dsn: str) -> dict[str, str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)"
            " ORDER BY name",
            (list(SETTINGS),),
        ).fetchall()
    return {str(n): str(v) for n, v in rows}


# --------------------------------------------------------------------------- monitor


class Monitor(threading.Thread):
    """Samples the message backlog once a second, on a connection of its own (its
    backend's CPU is the harness's, not PostgreSQL's)."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True, name="bench-monitor")
        self.conn = psycopg.connect(dsn, autocommit=True, application_name="bench-monitor")
        row = self.conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        self.backend_pid = int(row[0])
        self.t0 = 0.0
        self.samples: list[dict[str, float]] = []
        self.load_done_at: float | None = None
        self.drained = threading.Event()
        self.stop = threading.Event()

    def sample(self) -> dict[str, float]:
        t = time.perf_counter()
        row = self.conn.execute(
            "SELECT count(*) FILTER (WHERE completed_at IS NULL),"
            "       count(*) FILTER (WHERE status = 'delivered'), count(*),"
            "       (SELECT count(*) FROM pgqueuer.pgqueuer)"
            "  FROM app.messages"
        ).fetchone()
        assert row is not None
        return {
            "t": round(time.time() - self.t0, 3),
            "backlog": int(row[0]),
            "delivered": int(row[1]),
            "messages": int(row[2]),
            "jobs": int(row[3]),
            "query_ms": round((time.perf_counter() - t) * 1000, 1),
        }

    def run(self) -> None:
        tick = 0
        while not self.stop.is_set():
            s = self.sample()
            self.samples.append(s)
            if self.load_done_at is not None and s["t"] > self.load_done_at and not s["backlog"]:
                self.drained.set()
            tick += 1
            self.stop.wait(max(0.0, self.t0 + tick - time.time()))

    def close(self) -> None:
        self.stop.set()
        if self.ident is not None:  # started
            self.join(timeout=10)
        self.conn.close()


# ----------------------------------------------------------------------------- stack


def stack_config(cluster: LocalCluster, args: argparse.Namespace) -> StackConfig:
    extra: dict[str, Any] = {}
    names = {f.name for f in dataclasses.fields(StackConfig)}
    for name in ("api_processes", "api_workers"):
        if name in names:
            extra[name] = args.api_processes
            break
    # Callbacks on a receiver process of their own, as `make run` runs them (when this
    # Hermes has one).
    fields = {f.name for f in dataclasses.fields(StackConfig)}
    receiver: dict[str, Any] = {}
    if "receiver_port" in fields and not args.no_receiver:
        receiver["receiver_port"] = free_port()
    return StackConfig(
        db_host="127.0.0.1",
        db_port=cluster.port,
        db_name="bench",
        api_port=free_port(),
        postgrest_port=free_port(),
        sim_port=free_port(),
        run_dir=STATE / "bench-run",
        **receiver,
        workers=args.workers,
        worker_env={"HERMES_LOG_LEVEL": "WARNING", "HERMES_JOB_POLL_INTERVAL": "5"},
        sim_env={
            "SIM_TWILIO_RECEIPT_DELAY_MS": "0",
            "SIM_TWILIO_LATENCY_MS": "0",
            "SIM_TWILIO_LOG_REQUESTS": "0",
        },
        **extra,
    )


def git_commit() -> str | None:
    """The commit measured (+dirty when the tree has uncommitted changes)."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return None
    return f"{head}+dirty" if head and dirty else head or None


def specs_for(cfg: StackConfig, api_processes: int) -> list[ServiceSpec]:
    specs = stack_specs(cfg)
    for spec in specs:
        argv = spec.argv
        if spec.name == "api" and api_processes > 1 and "--workers" not in argv:
            spec.argv = [*argv, "--workers", str(api_processes)]
    return specs


# The bench tenant sends transactional messages (no quiet hours: a run must not depend
# on the hour) and has no content dedup (the load repeats bodies); consent and
# suppression are still checked at acceptance and at every claim.
BENCH_POLICY = '{"default_category": "transactional", "content_dedup_seconds": 0}'


def create_tenant(owner: str) -> str:
    with psycopg.connect(owner, autocommit=True) as conn:
        row = conn.execute(
            "SELECT private.create_tenant(NULL, 'Bench', 'test', '+15005550006')"
        ).fetchone()
        assert row is not None
        conn.execute(
            "SELECT private.set_tenant_policy(%s, NULL, %s::jsonb)",
            (row[0]["tenant"]["id"], BENCH_POLICY),
        )
    return str(row[0]["api_key"]["token"])


class BatchEndpointMissing(RuntimeError):
    pass


def warm_up(cfg: StackConfig, owner: str, token: str, args: argparse.Namespace) -> int:
    """A few messages through the whole path (SDK, pools), and the batch endpoint's
    presence checked; waits until they are terminal. Returns how many were sent."""
    headers = {"Authorization": f"Bearer {token}"}
    n = int(10 * args.api_processes)
    with httpx.Client(base_url=cfg.api_url, headers=headers, timeout=30) as api:
        for i in range(n):
            api.post(
                "/v1/messages", json={"to": f"+1415555{i:04d}", "body": f"warm-up {i}"}
            ).raise_for_status()
        if args.mode == "batch":
            items = [{"to": f"+1415556{i:04d}", "body": f"warm-up batch {i}"} for i in range(10)]
            r = api.post("/v1/messages/batch", json={"messages": items})
            if r.status_code in (404, 405):
                raise BatchEndpointMissing(
                    f"POST /v1/messages/batch answered {r.status_code}: this API has no batch"
                    " endpoint yet; run with --mode single"
                )
            if r.status_code != 200 or "results" not in r.json():
                raise RuntimeError(f"batch endpoint: HTTP {r.status_code}: {r.text[:300]}")
            n += len(items)
    deadline = time.monotonic() + 60
    with psycopg.connect(owner, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT count(*) FROM app.messages WHERE completed_at IS NULL")
            left = row.fetchone()
            if left is not None and left[0] == 0:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("warm-up messages did not reach a terminal state in 60 s")
    return n


# ----------------------------------------------------------------------- measurement


def groups_for(
    sup: Supervisor, cluster: LocalCluster, monitor_pid: int, workers: int
) -> list[procstat.Group]:
    pm = cluster.postmaster_pid()
    assert pm is not None, "no postmaster.pid"
    pid = {name: p.pid for name, p in sup.procs.items()}
    return [
        procstat.Group("postgresql", [pm], exclude={monitor_pid}),
        # The API and, when there is one, the provider-callback receiver.
        procstat.Group("api", [pid[n] for n in ("api", "receiver") if n in pid]),
        procstat.Group("workers", [pid[f"worker{i + 1}"] for i in range(workers)]),
        procstat.Group("postgrest", [pid["postgrest"]]),
        procstat.Group("simulator", [pid["twilio-sim"]], harness=True),
        procstat.Group("bench", [os.getpid()], harness=True, roots_only=True),
        procstat.Group("monitor", [monitor_pid], harness=True, roots_only=True),
    ]


def top_statements(dsn: str, limit: int = 15) -> list[dict[str, Any]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT s.calls, s.total_exec_time, s.mean_exec_time, s.rows, s.toplevel,"
            "       r.rolname, left(regexp_replace(s.query, '\\s+', ' ', 'g'), 240)"
            "  FROM pg_stat_statements s LEFT JOIN pg_roles r ON r.oid = s.userid"
            " WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " ORDER BY s.total_exec_time DESC LIMIT %s",
            (limit,),
        ).fetchall()
    return [
        {
            "calls": int(r[0]),
            "total_ms": round(float(r[1]), 1),
            "mean_ms": round(float(r[2]), 3),
            "rows": int(r[3]),
            "toplevel": bool(r[4]),
            "role": r[5],
            "query": r[6],
        }
        for r in rows
    ]


def db_latency(conn: psycopg.Connection[Any], t0: float) -> dict[str, Any]:
    row = conn.execute(
        "SELECT count(*),"
        "       percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP"
        "         (ORDER BY extract(epoch FROM completed_at - created_at)),"
        "       max(extract(epoch FROM completed_at - created_at)),"
        "       percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP"
        "         (ORDER BY extract(epoch FROM sent_at - created_at)),"
        "       extract(epoch FROM max(completed_at))::float8 - %s"
        "  FROM app.messages WHERE status = 'delivered' AND created_at >= to_timestamp(%s)",
        (t0, t0),
    ).fetchone()
    assert row is not None
    if not row[0]:
        return {"delivered": 0}

    def ms(v: Any) -> float:
        return round(float(v) * 1000, 1)

    return {
        "delivered": int(row[0]),
        "accept_to_delivered_ms": {"p50": ms(row[1][0]), "p99": ms(row[1][1]), "max": ms(row[2])},
        "accept_to_handed_off_ms": {"p50": ms(row[3][0]), "p99": ms(row[3][1])},
        "last_delivered_s": round(float(row[4]), 3),
    }


def delivered_series(conn: psycopg.Connection[Any], t0: float, n: int) -> list[int]:
    rows = conn.execute(
        "SELECT floor(extract(epoch FROM completed_at) - %s)::int AS s, count(*)"
        "  FROM app.messages WHERE status = 'delivered' AND created_at >= to_timestamp(%s)"
        " GROUP BY 1",
        (t0, t0),
    ).fetchall()
    out = [0] * n
    for s, c in rows:
        if 0 <= s < n:
            out[s] = int(c)
    return out


def loss_check(
    conn: psycopg.Connection[Any], ids: list[str], t0: float, sim_url: str
) -> dict[str, Any]:
    """Every message the client saw accepted exists and is terminal; nothing reached
    the carrier twice."""
    conn.execute("CREATE TEMP TABLE bench_seen (id uuid PRIMARY KEY)")
    unique = set(ids)
    with conn.cursor() as cur, cur.copy("COPY bench_seen (id) FROM STDIN") as copy:
        for i in unique:
            copy.write_row((i,))
    conn.execute("ANALYZE bench_seen")
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE m.id IS NULL),"
        "       count(*) FILTER (WHERE m.id IS NOT NULL AND m.completed_at IS NULL),"
        "       count(*) FILTER (WHERE m.completed_at IS NOT NULL AND m.status <> ALL(%s))"
        "  FROM bench_seen s LEFT JOIN app.messages m ON m.id = s.id",
        (list(TERMINAL),),
    ).fetchone()
    assert row is not None
    statuses = dict(
        conn.execute(
            "SELECT m.status, count(*) FROM bench_seen s JOIN app.messages m ON m.id = s.id"
            " GROUP BY 1 ORDER BY 1"
        ).fetchall()
    )
    extra = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE m.completed_at IS NULL) FROM app.messages m"
        " WHERE m.created_at >= to_timestamp(%s)"
        "   AND NOT EXISTS (SELECT 1 FROM bench_seen s WHERE s.id = m.id)",
        (t0,),
    ).fetchone()
    assert extra is not None
    attempts = conn.execute(
        "SELECT count(*) FILTER (WHERE provider_message_id IS NOT NULL), count(*),"
        "       coalesce(sum(claim_count), 0)"
        "  FROM app.message_attempts"
    ).fetchone()
    assert attempts is not None
    try:
        dup = conn.execute(
            "SELECT count(*) FROM app.message_events"
            " WHERE event_type = 'handed_off' AND error_code = 'duplicate_handoff'"
        ).fetchone()
        duplicate_handoffs: int | None = int(dup[0]) if dup else None
    except psycopg.Error:
        duplicate_handoffs = None
    carrier = carrier_ledger(sim_url)
    result: dict[str, Any] = {
        "accepted_ids": len(ids),
        "duplicate_ids_from_client": len(ids) - len(unique),
        "missing": int(row[0]),
        "not_terminal": int(row[1]),
        "bad_terminal": int(row[2]),
        "statuses": {str(k): int(v) for k, v in statuses.items()},
        "unacknowledged_in_db": int(extra[0]),
        "unacknowledged_not_terminal": int(extra[1]),
        "attempts": int(attempts[1]),
        "attempts_handed_off": int(attempts[0]),
        "claims": int(attempts[2]),
        "duplicate_handoff_events": duplicate_handoffs,
        "carrier": carrier,
    }
    creates = carrier.get("creates")
    result["carrier_creates_match_handoffs"] = creates == result["attempts_handed_off"]
    result["all_terminal"] = result["not_terminal"] == 0 and extra[1] == 0
    # Not terminal when the drain ended is slowness, not loss; a carrier create not
    # yet recorded as a hand-off only counts once everything is terminal.
    result["no_loss"] = (
        result["missing"] == 0
        and result["bad_terminal"] == 0
        and result["duplicate_ids_from_client"] == 0
        and carrier.get("duplicate_callback_urls") == 0
        and not duplicate_handoffs
        and (result["carrier_creates_match_handoffs"] or not result["all_terminal"])
    )
    result["ok"] = result["no_loss"] and result["all_terminal"]
    return result


def carrier_ledger(sim_url: str) -> dict[str, Any]:
    with httpx.Client(base_url=sim_url, timeout=120) as sim:
        r = sim.get("/_sim/stats")
        if r.status_code == 200:
            stats: dict[str, Any] = r.json()
            return {"source": "/_sim/stats", **stats}
        ledger = sim.get("/_sim/messages")
        ledger.raise_for_status()
        entries: list[dict[str, Any]] = ledger.json()
    urls = Counter(e["status_callback"] for e in entries if e.get("status_callback"))
    return {
        "source": "/_sim/messages",
        "creates": len(entries),
        "duplicate_callback_urls": sum(1 for c in urls.values() if c > 1),
    }


# ---------------------------------------------------------------------------- series


def percentile(sorted_values: list[float], p: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(p * len(sorted_values)))]


def lat_summary(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    v = sorted(values)
    return {
        "p50": round(percentile(v, 0.5) * 1000, 2),
        "p99": round(percentile(v, 0.99) * 1000, 2),
        "max": round(v[-1] * 1000, 2),
    }


def client_series(load: loadgen.LoadResult, n: int) -> dict[str, list[Any]]:
    r = load.records
    per = load.spec.per_request
    offered = [0] * n
    accepted = [0] * n
    lat: list[list[float]] = [[] for _ in range(n)]
    for sched, done, acc in zip(r.sched, r.done, r.accepted, strict=True):
        s = int(sched)
        if 0 <= s < n:
            offered[s] += per
            if acc:
                lat[s].append(done - sched)
        d = int(done)
        if acc and 0 <= d < n:
            accepted[d] += acc
    p50: list[float | None] = []
    p99: list[float | None] = []
    for values in lat:
        values.sort()
        p50.append(round(percentile(values, 0.5) * 1000, 2) if values else None)
        p99.append(round(percentile(values, 0.99) * 1000, 2) if values else None)
    return {"offered": offered, "accepted": accepted, "latency_p50_ms": p50, "latency_p99_ms": p99}


def backlog_series(samples: list[dict[str, float]], n: int) -> dict[str, list[int | None]]:
    backlog: list[int | None] = [None] * n
    jobs: list[int | None] = [None] * n
    for s in samples:
        i = round(s["t"])
        if 0 <= i < n and backlog[i] is None:
            backlog[i] = int(s["backlog"])
            jobs[i] = int(s["jobs"])
    return {"backlog": backlog, "queued_jobs": jobs}


# ------------------------------------------------------------------------------- run


def speed_check() -> float:
    """CPU seconds of a fixed pure-Python loop: how fast this machine is right now. A
    shared host's speed drifts (the same loop takes 1.9-2.8 s minutes apart): runs
    compare only when their speed checks do."""
    t = time.process_time()
    s = 0
    for i in range(5_000_000):
        s += i
    return round(time.process_time() - t, 3)


def run(args: argparse.Namespace) -> dict[str, Any]:
    notes: list[str] = []
    speed_before = speed_check()
    cluster, pgss = start_cluster(notes, args.pgss_track)
    sup = Supervisor(log=(STATE / "bench-stack.log").open("w"))
    workdir = STATE / "bench-run"
    result: dict[str, Any] = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "name": args.name,
        "mode": args.mode,
        "quick": args.quick,
        "machine": {
            "cpus": cpu_count(),
            "memory_gib": round(memory_bytes() / 1024**3, 1),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "speed_check_s": [speed_before],
        },
        "config": {
            "rate": args.rate,
            "duration_s": args.duration,
            "batch_size": args.batch_size,
            "workers": args.workers,
            "api_processes": args.api_processes,
            "receiver_process": not args.no_receiver,
            "load_processes": args.load_processes,
            "max_outstanding": args.max_outstanding,
            "timeout_s": args.timeout,
            "drain_s": args.drain,
            "idempotency_keys": args.idempotency_keys,
            "pgss_track": args.pgss_track if pgss else "none",
        },
        "notes": notes,
    }
    try:
        pm = cluster.postmaster_pid()
        assert pm is not None
        result["settings"] = read_settings(cluster.dsn())
        if not args.no_baseline:
            result["baseline"] = run_baselines(args, cluster, sup, pm, workdir)
        cluster.ensure_database("bench")
        owner = cluster.dsn("bench")
        migrate(owner)
        if pgss:
            with psycopg.connect(owner, autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        cfg = stack_config(cluster, args)
        token = create_tenant(owner)
        for spec in specs_for(cfg, args.api_processes):
            sup.start(spec)
        result["warm_up_messages"] = warm_up(cfg, owner, token, args)
        result["hermes"] = run_hermes(args, cluster, sup, cfg, owner, token, pgss, workdir)
    finally:
        sup.stop()
        cluster.stop()
    if "baseline" in result and "hermes" in result:
        result["ratios"] = ratios(result["hermes"], result["baseline"])
    return result


def run_baselines(
    args: argparse.Namespace, cluster: LocalCluster, sup: Supervisor, pm: int, workdir: Path
) -> dict[str, Any]:
    cluster.ensure_database("baseline")
    env = baseline.Env(cluster.dsn("baseline"), pm, sup, workdir)
    print(f"baseline: FastAPI + one INSERT at {args.rate:g} msg/s for {args.baseline_duration:g} s")
    web = baseline.web(
        env,
        mode=args.mode,
        rate=args.rate,
        duration=args.baseline_duration,
        batch_size=args.batch_size,
        processes=args.api_processes,
        load_processes=args.load_processes,
        saturation_s=5.0 if args.quick else 8.0,
        saturation_clients=32 if args.mode == "single" else 4,
        max_outstanding=args.max_outstanding,
    )
    print(f"baseline: pgqueuer no-op drain of {args.pgq_jobs} jobs")
    pgq = baseline.pgqueuer(env, jobs=args.pgq_jobs, batch_size=100)
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("DROP DATABASE baseline")
        conn.execute("CHECKPOINT")
    return {"web": web, "pgqueuer": pgq}


def run_hermes(
    args: argparse.Namespace,
    cluster: LocalCluster,
    sup: Supervisor,
    cfg: StackConfig,
    owner: str,
    token: str,
    pgss: bool,
    workdir: Path,
) -> dict[str, Any]:
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")
        if pgss:
            conn.execute("SELECT pg_stat_statements_reset()")
    monitor = Monitor(owner)
    groups = groups_for(sup, cluster, monitor.backend_pid, args.workers)
    marks: dict[str, procstat.Snapshot] = {}

    def on_start(t0: float) -> None:
        marks["start"] = procstat.take(groups)
        monitor.t0 = t0
        monitor.start()

    spec = loadgen.Spec(
        host="127.0.0.1",
        port=cfg.api_port,
        path="/v1/messages/batch" if args.mode == "batch" else "/v1/messages",
        mode=args.mode,
        rate=args.rate,
        duration=args.duration,
        start_at=0,
        out="",
        token=token,
        batch_size=args.batch_size,
        max_outstanding=args.max_outstanding,
        timeout=args.timeout,
        label="bench",
        idempotency_keys=args.idempotency_keys,
    )
    print(
        f"hermes: {args.rate:g} msg/s ({args.mode}) for {args.duration:g} s, "
        f"{args.workers} worker(s), {args.api_processes} API process(es)"
    )
    try:
        load = loadgen.drive(spec, args.load_processes, workdir, on_start=on_start)
        marks["load_end"] = procstat.take(groups)
        load_end = time.time() - load.t0_epoch
        monitor.load_done_at = load_end
        print(f"hermes: load done after {load_end:.1f} s; draining (up to {args.drain:g} s)")
        drained = monitor.drained.wait(timeout=args.drain)
        marks["drain_end"] = procstat.take(groups)
        drain_end = time.time() - load.t0_epoch
    finally:
        monitor.close()
    failed = sup.failed()
    t0 = load.t0_epoch
    n = math.ceil(drain_end) + 1
    with psycopg.connect(owner, autocommit=True) as conn:
        latency_db = db_latency(conn, t0)
        delivered_per_s = delivered_series(conn, t0, n)
        delivered_in_load = sum(delivered_per_s[: math.floor(load_end) + 1])
        loss = loss_check(conn, load.records.ids, t0, cfg.sim_url)
    statements = top_statements(owner) if pgss else None
    r = load.records
    offered = len(r.sched) * spec.per_request
    accepted = sum(r.accepted)
    delivered = int(latency_db.get("delivered", 0))
    cpu_load = procstat.delta(marks["start"].cpu, marks["load_end"].cpu)
    cpu_drain = procstat.delta(marks["load_end"].cpu, marks["drain_end"].cpu)
    cpu_total = procstat.delta(marks["start"].cpu, marks["drain_end"].cpu)
    for window in (cpu_load, cpu_total):
        window["loadgen"] = round(load.cpu_s, 3)
    cpu_drain["loadgen"] = 0.0
    hermes_cpu = sum(cpu_total[g] for g in HERMES_GROUPS)
    harness_cpu = sum(cpu_total[g] for g in HARNESS_GROUPS)
    busy = cpu_total["machine_busy_s"]
    statuses = Counter(r.status)
    accepted_latency = [d - s for d, s, a in zip(r.done, r.sched, r.accepted, strict=True) if a]
    service_latency = [d - s for d, s, a in zip(r.done, r.send, r.accepted, strict=True) if a]
    series = client_series(load, n)
    series["delivered"] = [int(x) for x in delivered_per_s]
    series |= backlog_series(monitor.samples, n)
    return {
        "offered": offered,
        "accepted": accepted,
        "delivered": delivered,
        "offered_per_s": round(offered / args.duration, 1),
        "accepted_per_s": round(accepted / load_end, 1),
        "delivered_in_load_per_s": round(delivered_in_load / load_end, 1),
        "delivered_per_s": round(delivered / latency_db["last_delivered_s"], 1)
        if delivered
        else 0.0,
        "load_s": round(load_end, 2),
        "drain_s": round(drain_end - load_end, 2),
        "drained": drained,
        "backlog_at_load_end": next(
            (int(s["backlog"]) for s in monitor.samples if s["t"] >= load_end), None
        ),
        "max_backlog": max((int(s["backlog"]) for s in monitor.samples), default=0),
        "http_statuses": {str(k): v for k, v in sorted(statuses.items())},
        "rejected_items": sum(r.rejected),
        "accept_latency_ms": lat_summary(accepted_latency),
        "service_latency_ms": lat_summary(service_latency),
        **latency_db,
        "load": load.summary(),
        "cpu_s": {"load": cpu_load, "drain": cpu_drain, "total": cpu_total},
        "hermes_cpu_s": round(hermes_cpu, 3),
        "harness_cpu_s": round(harness_cpu, 3),
        "unattributed_cpu_s": round(busy - hermes_cpu - harness_cpu, 3),
        "other_processes": procstat.others(marks["start"], marks["drain_end"]),
        "machine_busy_pct": round(100 * busy / cpu_total["machine_total_s"], 1)
        if cpu_total["machine_total_s"]
        else None,
        "hermes_cpu_ms_per_message": round(hermes_cpu * 1000 / delivered, 3) if delivered else None,
        "hermes_cpu_ms_per_accepted": round(hermes_cpu * 1000 / accepted, 3) if accepted else None,
        "cpu_ms_per_message": {
            g: round(cpu_total[g] * 1000 / delivered, 3) if delivered else None
            for g in (*HERMES_GROUPS, *HARNESS_GROUPS)
        },
        "monitor_query_ms_max": max((s["query_ms"] for s in monitor.samples), default=None),
        "services_died": failed,
        "loss_check": loss,
        "top_statements": statements,
        "series": series,
    }


def ratios(hermes: dict[str, Any], base: dict[str, Any]) -> dict[str, float | None]:
    def ratio(a: float | None, b: float | None) -> float | None:
        return float(f"{a / b:.3g}") if a and b else None

    web = base["web"]
    return {
        "cpu_per_message_vs_web_baseline": ratio(
            hermes["hermes_cpu_ms_per_message"], web["cpu_ms_per_message"]
        ),
        "cpu_per_message_vs_pgqueuer_job": ratio(
            hermes["hermes_cpu_ms_per_message"], base["pgqueuer"]["cpu_ms_per_job"]
        ),
        "delivered_rate_vs_web_max_rate": ratio(hermes["delivered_per_s"], web["max_rate_per_s"]),
        "accept_p99_vs_web_p99": ratio(
            (hermes["accept_latency_ms"] or {}).get("p99"),
            (web["open_loop"]["accept_latency_ms"] or {}).get("p99"),
        ),
    }


# ---------------------------------------------------------------------------- output


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogFormatter

    h = result["hermes"]
    s = h["series"]
    t = list(range(len(s["offered"])))
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(11, 9), sharex=True)
    ax1.plot(t, s["offered"], label="offered", color="tab:gray", drawstyle="steps-post")
    ax1.plot(t, s["accepted"], label="accepted (201)", color="tab:blue", drawstyle="steps-post")
    ax1.plot(t, s["delivered"], label="delivered", color="tab:green", drawstyle="steps-post")
    ax1.set_ylabel("messages / s")
    ax1.legend(loc="upper right")
    ax1.axvline(h["load_s"], color="black", linestyle=":", linewidth=1)
    nan = float("nan")
    ax2.plot(
        t, [v if v is not None else nan for v in s["backlog"]], color="tab:red", label="backlog"
    )
    ax2.plot(
        t,
        [v if v is not None else nan for v in s["queued_jobs"]],
        color="tab:orange",
        linestyle="--",
        label="pgqueuer jobs",
    )
    ax2.set_ylabel("accepted, not terminal")
    ax2.legend(loc="upper right")
    ax2.axvline(h["load_s"], color="black", linestyle=":", linewidth=1)
    ax3.plot(t, [v if v is not None else nan for v in s["latency_p50_ms"]], label="p50")
    ax3.plot(t, [v if v is not None else nan for v in s["latency_p99_ms"]], label="p99")
    ax3.set_yscale("log")
    ax3.yaxis.set_major_formatter(LogFormatter(labelOnlyBase=False))
    ax3.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.4)))
    ax3.set_ylabel("accept latency (ms)\nby scheduled second")
    ax3.set_xlabel("seconds since the load started (dotted: load ends)")
    ax3.legend(loc="upper right")
    per = h["hermes_cpu_ms_per_message"]
    cfg = result["config"]
    fig.suptitle(
        f"Hermes open loop, {result['mode']} (batch {cfg['batch_size']}): {cfg['rate']:g} msg/s"
        f" for {cfg['duration_s']:g} s, {cfg['workers']} worker(s), {cfg['api_processes']} API"
        f" proc.; {h['delivered']} delivered, {per if per is not None else '-'} Hermes CPU-ms/msg"
        f"\n{result['at']}",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _fmt_lat(d: dict[str, float] | None) -> str:
    if not d:
        return "-"
    return "/".join(f"{d[k]:g}" for k in ("p50", "p99", "max") if k in d) + " ms"


def summary_text(result: dict[str, Any]) -> str:
    lines: list[str] = []
    add = lines.append
    h = result["hermes"]
    cfg = result["config"]
    add(
        f"== Hermes, {result['mode']} mode, {cfg['rate']:g} msg/s offered for"
        f" {cfg['duration_s']:g} s ({cfg['workers']} worker(s), {cfg['api_processes']} API"
        f" process(es), {result['machine']['cpus']} cores; speed check"
        f" {'/'.join(str(s) for s in result['machine'].get('speed_check_s', []))} s)"
    )
    add(
        f"offered {h['offered']} ({h['offered_per_s']}/s), accepted {h['accepted']}"
        f" ({h['accepted_per_s']}/s over {h['load_s']} s), delivered {h['delivered']}"
        f" ({h['delivered_in_load_per_s']}/s during the load, {h['delivered_per_s']}/s to the last)"
    )
    add(
        f"backlog: max {h['max_backlog']}, {h['backlog_at_load_end']} at load end;"
        f" drained: {h['drained']} after {h['drain_s']} s more"
    )
    add(
        f"HTTP statuses {h['http_statuses']}; load generator: cap {h['load']['cap']} open"
        f" requests, cap hits {h['load']['cap_hits']}, max outstanding"
        f" {h['load']['max_outstanding_seen']} (of which queued behind the cap"
        f" {h['load']['max_queued_behind_cap']})"
    )
    add(
        f"accept latency (client, from scheduled time) p50/p99/max {_fmt_lat(h['accept_latency_ms'])};"
        f" from actual send {_fmt_lat(h['service_latency_ms'])}"
    )
    add(
        f"accept -> delivered (DB) {_fmt_lat(h.get('accept_to_delivered_ms'))};"
        f" accept -> handed off {_fmt_lat(h.get('accept_to_handed_off_ms'))}"
    )
    total = h["cpu_s"]["total"]
    add("CPU seconds (load + drain):")
    for g in (*HERMES_GROUPS, *HARNESS_GROUPS):
        per = h["cpu_ms_per_message"][g]
        kind = "harness" if g in HARNESS_GROUPS else "hermes "
        add(
            f"  {kind} {g:<11} {total[g]:9.2f} s  {per if per is not None else '-':>8} ms/msg"
            f"  (load {h['cpu_s']['load'][g]:.2f}, drain {h['cpu_s']['drain'][g]:.2f})"
        )
    add(
        f"  Hermes {h['hermes_cpu_s']} s, harness {h['harness_cpu_s']} s, machine busy"
        f" {total['machine_busy_s']} s ({h['machine_busy_pct']} %; interrupts"
        f" {total['machine_irq_s']} s), unattributed {h['unattributed_cpu_s']} s"
    )
    if h["other_processes"]:
        add(
            "  other processes: "
            + ", ".join(f"{o['comm']}[{o['pid']}] {o['cpu_s']} s" for o in h["other_processes"])
        )
    add(
        f"** Hermes CPU-ms per delivered message: {h['hermes_cpu_ms_per_message']}"
        f" (per accepted: {h['hermes_cpu_ms_per_accepted']})"
    )
    if not h["drained"]:
        add(
            "!! not drained: part of the accepted messages were still in flight when the"
            " drain ended, so the per-delivered figure overstates the cost (the CPU of the"
            " undelivered ones' work so far is in it)"
        )
    loss = h["loss_check"]
    verdict = "OK" if loss["ok"] else ("no loss, NOT ALL TERMINAL" if loss["no_loss"] else "FAILED")
    add(
        f"loss check: {verdict}: {loss['accepted_ids']} accepted ids,"
        f" missing {loss['missing']}, not terminal {loss['not_terminal']}, statuses"
        f" {loss['statuses']}; unacknowledged in DB {loss['unacknowledged_in_db']};"
        f" carrier creates {loss['carrier'].get('creates')} vs hand-offs"
        f" {loss['attempts_handed_off']}, duplicate callback URLs"
        f" {loss['carrier'].get('duplicate_callback_urls')} ({loss['carrier']['source']})"
    )
    if h["services_died"]:
        add(f"!! services died during the run: {h['services_died']}")
    if h["load"]["errors"]:
        add(f"first errors: {h['load']['errors']}")
    if h["top_statements"]:
        add("top statements by total time (load + drain):")
        for st in h["top_statements"]:
            add(
                f"  {st['total_ms']:10.0f} ms {st['calls']:8d} calls {st['mean_ms']:8.3f} ms"
                f" {st['rows']:8d} rows {'top' if st['toplevel'] else 'nested':6} {st['query'][:110]}"
            )
    base = result.get("baseline")
    if base:
        web, pgq = base["web"], base["pgqueuer"]
        ol = web["open_loop"]
        add(
            f"== baseline web (FastAPI, one INSERT, {web['processes']} process(es)):"
            f" {ol['accepted_per_s']}/s accepted at {cfg['rate']:g} offered,"
            f" {web['cpu_ms_per_message']} CPU-ms/msg ({web['cpu_ms_per_message_from']};"
            f" at the offered rate: server {ol['cpu_s']['server']} s +"
            f" PostgreSQL {ol['cpu_s']['postgresql']} s), latency {_fmt_lat(ol['accept_latency_ms'])};"
            f" max rate {web['max_rate_per_s']}/s ({web['saturation']['clients']} closed-loop"
            f" clients, {web['saturation']['cpu_ms_per_message']} CPU-ms/msg)"
        )
        add(
            f"== baseline pgqueuer no-op: {pgq['drained']} jobs in {pgq['drain_s']} s ="
            f" {pgq['jobs_per_s']} jobs/s, {pgq['cpu_ms_per_job']} CPU-ms/job (worker"
            f" {pgq['cpu_s']['worker']} s + PostgreSQL {pgq['cpu_s']['postgresql']} s)"
        )
    if "ratios" in result:
        add(f"ratios: {result['ratios']}")
    s = result["settings"]
    add(
        "settings: "
        + ", ".join(f"{k}={s[k]}" for k in sorted(s) if k not in ("server_version",))
        + f"; PostgreSQL {s.get('server_version')}"
    )
    for note in result["notes"]:
        add(f"note: {note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        result = run(args)
        result["machine"]["speed_check_s"].append(speed_check())
    except BatchEndpointMissing as exc:
        print(f"bench: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    args.results_dir.mkdir(parents=True, exist_ok=True)
    with (args.results_dir / f"{args.name}.jsonl").open("a") as f:
        f.write(json.dumps(result) + "\n")
    png = args.results_dir / f"{args.name}-{args.mode}.png"
    plot(result, png)
    print(summary_text(result))
    print(f"-> {args.results_dir / (args.name + '.jsonl')}, {png}")
    if not result["hermes"]["loss_check"]["no_loss"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
