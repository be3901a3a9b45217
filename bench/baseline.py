"""Baselines measured on the same machine and cluster, before the Hermes stack starts.

(a) ``web``: :mod:`bench.baseline_app` (FastAPI + uvicorn, one INSERT a request) under
    the same open-loop generator at the same offered rate; CPU-ms per accepted
    message (server + PostgreSQL), then a closed loop of ``saturation_clients``
    connections for its maximum sustained rate.
(b) ``pgqueuer``: N no-op jobs enqueued with pgqueuer's ``Queries.enqueue`` (batches of
    1,000), drained by a ``QueueManager`` (batch_size 100, ``mode=drain``) in a process
    of its own, on :class:`workers.queue_driver.SplitListenPsycopgDriver` (asyncpg is
    not a dependency; pgqueuer 1.6's own psycopg driver holds the connection lock
    through its 1 s NOTIFY wait). Jobs/s and CPU-ms per job (worker + PostgreSQL).

The drain worker is ``python -m bench.baseline drain <dsn> <batch_size>``.
"""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg

from bench import loadgen, procstat
from bench.baseline_app import TABLE_DDL
from hermes.services import ROOT, ServiceSpec, Supervisor, free_port

PGQ_SCHEMA = "pgqueuer"


@dataclass
class Env:
    """What a baseline needs to know about the cluster and the run."""

    dsn: str
    postmaster_pid: int
    supervisor: Supervisor
    workdir: Path


def _cpu_ms_per(cpu_s: float, n: int) -> float | None:
    return round(cpu_s * 1000 / n, 3) if n else None


# ------------------------------------------------------------------------------ web


def web(
    env: Env,
    *,
    mode: str,
    rate: float,
    duration: float,
    batch_size: int,
    processes: int,
    load_processes: int,
    saturation_s: float,
    saturation_clients: int,
    max_outstanding: int,
) -> dict[str, Any]:
    with psycopg.connect(env.dsn, autocommit=True) as conn:
        conn.execute(TABLE_DDL)
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "--factory", "bench.baseline_app:create_app"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    if processes > 1:
        argv += ["--workers", str(processes)]
    spec_env = {k: v for k, v in os.environ.items() if not k.startswith(("HERMES_", "BENCH_"))}
    spec_env |= {"BENCH_BASELINE_DSN": env.dsn, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    proc = env.supervisor.start(
        ServiceSpec("baseline", argv, spec_env, f"http://127.0.0.1:{port}/healthz")
    )
    path = "/v1/messages/batch" if mode == "batch" else "/v1/messages"
    try:
        _warm_up(port, path, mode, batch_size, processes)
        groups = [
            procstat.Group("server", [proc.pid]),
            procstat.Group("postgresql", [env.postmaster_pid]),
        ]
        base = loadgen.Spec(
            host="127.0.0.1",
            port=port,
            path=path,
            mode=mode,
            rate=rate,
            duration=duration,
            start_at=0,
            out="",
            batch_size=batch_size,
            max_outstanding=max_outstanding,
            label="baseline",
        )
        open_loop = _measured_load(env, base, load_processes, groups)
        closed = loadgen.Spec(
            **(
                asdict(base)
                | {"duration": saturation_s, "closed": saturation_clients, "label": "sat"}
            )
        )
        closed.max_outstanding = max(closed.max_outstanding, saturation_clients)
        saturated = _measured_load(env, closed, load_processes, groups)
    finally:
        env.supervisor.stop_one("baseline")
    # CPU is counted in clock ticks (10 ms) per process: below a second of it (a short
    # run of a few batches), the saturation run's figure is the more exact one.
    measured = open_loop["cpu_s"]["server"] + open_loop["cpu_s"]["postgresql"]
    source = "open_loop" if measured >= 1.0 else "saturation"
    return {
        "processes": processes,
        "open_loop": open_loop,
        "saturation": saturated | {"clients": saturation_clients},
        "max_rate_per_s": saturated["accepted_per_s"],
        "cpu_ms_per_message": (open_loop if source == "open_loop" else saturated)[
            "cpu_ms_per_message"
        ],
        "cpu_ms_per_message_from": source,
    }


def _warm_up(port: int, path: str, mode: str, batch_size: int, processes: int) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        for i in range((20 if mode == "single" else 3) * processes):
            msg = {"to": f"+1415555{i:04d}", "body": f"warm-up {i}"}
            body: dict[str, Any] = msg if mode == "single" else {"messages": [msg] * batch_size}
            client.post(path, json=body).raise_for_status()


def _measured_load(
    env: Env, spec: loadgen.Spec, load_processes: int, groups: list[procstat.Group]
) -> dict[str, Any]:
    before: dict[str, float] = {}

    def start(_t0: float) -> None:
        before.update(procstat.sample(groups))

    result = loadgen.drive(spec, load_processes, env.workdir, on_start=start)
    after = procstat.sample(groups)
    cpu = procstat.delta(before, after)
    r = result.records
    accepted = sum(r.accepted)
    wall = result.wall_s
    latency = sorted(d - s for d, s, a in zip(r.done, r.sched, r.accepted, strict=True) if a)
    system = cpu["server"] + cpu["postgresql"]
    return {
        "offered_per_s": round(len(r.sched) * spec.per_request / spec.duration, 1)
        if not spec.closed
        else None,
        "accepted": accepted,
        "accepted_per_s": round(accepted / wall, 1) if wall else 0.0,
        "not_accepted_requests": sum(1 for a in r.accepted if not a),
        "accept_latency_ms": _latency(latency),
        "wall_s": round(wall, 2),
        "cpu_s": {**cpu, "loadgen": round(result.cpu_s, 3)},
        "cpu_ms_per_message": _cpu_ms_per(system, accepted),
        "load": result.summary(),
    }


def _latency(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    n = len(values)

    def at(p: float) -> float:
        return round(values[min(n - 1, int(p * n))] * 1000, 2)

    return {"p50": at(0.5), "p99": at(0.99), "max": round(values[-1] * 1000, 2)}


# ------------------------------------------------------------------------- pgqueuer


async def _enqueue(dsn: str, jobs: int, chunk: int = 1000) -> None:
    from pgqueuer.adapters.drivers.psycopg import PsycopgDriver
    from pgqueuer.queries import Queries

    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    try:
        queries = Queries(PsycopgDriver(conn))
        for start in range(0, jobs, chunk):
            n = min(chunk, jobs - start)
            await queries.enqueue(["noop"] * n, [None] * n, [0] * n)
    finally:
        await conn.close()


def install_pgqueuer(dsn: str) -> None:
    from pgqueuer.adapters.persistence.qb import DBSettings, QueryBuilderEnvironment

    install = QueryBuilderEnvironment(DBSettings(db_schema=PGQ_SCHEMA)).build_install_query()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {PGQ_SCHEMA} CASCADE")
        conn.execute(install.encode())


def pgqueuer(env: Env, *, jobs: int, batch_size: int = 100) -> dict[str, Any]:
    os.environ["PGQUEUER_SCHEMA"] = PGQ_SCHEMA
    install_pgqueuer(env.dsn)
    t = time.perf_counter()
    asyncio.run(_enqueue(env.dsn, jobs))
    enqueue_s = time.perf_counter() - t
    with psycopg.connect(env.dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE pgqueuer.pgqueuer")
        conn.execute("CHECKPOINT")
    groups = [procstat.Group("postgresql", [env.postmaster_pid])]
    child_env = os.environ | {"PYTHONPATH": str(ROOT), "PGQUEUER_SCHEMA": PGQ_SCHEMA}
    argv = [sys.executable, "-m", "bench.baseline", "drain", env.dsn, str(batch_size)]
    with subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=child_env, cwd=ROOT
    ) as child:
        assert child.stdin is not None and child.stdout is not None
        if child.stdout.readline().strip() != b"ready":
            raise RuntimeError("pgqueuer drain worker did not start")
        before = procstat.sample(groups)
        child.stdin.write(b"go\n")
        child.stdin.flush()
        out = orjson.loads(child.stdout.read())
        if child.wait() != 0:
            raise RuntimeError(f"pgqueuer drain worker exited with {child.returncode}")
    after = procstat.sample(groups)
    pg = procstat.delta(before, after)["postgresql"]
    with psycopg.connect(env.dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM pgqueuer.pgqueuer),"
            " (SELECT count(*) FROM pgqueuer.pgqueuer_log WHERE status = 'successful')"
        ).fetchone()
    assert row is not None
    done = out["jobs"]
    return {
        "jobs": jobs,
        "batch_size": batch_size,
        "driver": "SplitListenPsycopgDriver",
        "enqueue_per_s": round(jobs / enqueue_s, 1),
        "drained": done,
        "left_in_queue": int(row[0]),
        "logged_successful": int(row[1]),
        "drain_s": round(out["wall_s"], 3),
        "jobs_per_s": round(done / out["wall_s"], 1) if out["wall_s"] else 0.0,
        "cpu_s": {"worker": round(out["cpu_s"], 3), "postgresql": round(pg, 3)},
        "cpu_ms_per_job": _cpu_ms_per(out["cpu_s"] + pg, done),
    }


async def _drain(dsn: str, batch_size: int) -> dict[str, Any]:
    from pgqueuer.models import Job
    from pgqueuer.qm import QueueManager
    from pgqueuer.queries import Queries
    from pgqueuer.types import QueueExecutionMode

    from workers.queue_driver import SplitListenPsycopgDriver

    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    listen = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    qm = QueueManager(Queries(SplitListenPsycopgDriver(conn, listen)))
    done = 0

    @qm.entrypoint("noop")
    async def noop(_job: Job) -> None:
        nonlocal done
        done += 1

    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    await qm.run(
        dequeue_timeout=timedelta(seconds=1),
        batch_size=batch_size,
        mode=QueueExecutionMode.drain,
        max_concurrent_tasks=None,
    )
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    await listen.close()
    if not conn.closed:
        await conn.close()
    cpu = ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime
    return {"jobs": done, "wall_s": wall, "cpu_s": cpu}


def main() -> None:
    if len(sys.argv) != 4 or sys.argv[1] != "drain":
        raise SystemExit("usage: python -m bench.baseline drain <dsn> <batch_size>")
    result = asyncio.run(_drain(sys.argv[2], int(sys.argv[3])))
    sys.stdout.write(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
