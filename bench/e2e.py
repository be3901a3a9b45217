"""End-to-end benchmark: POST /v1/messages -> delivered, on a throwaway stack.

Starts its own cluster (.hermes/bench-pgdata), PostgREST, API, workers and the Twilio
simulator at zero latency and zero receipt delay, then measures
  1. latency: one message at a time, accept -> delivered, from the database's own
     timestamps (messages.created_at -> completed_at) and as the client sees it
     (POST start -> delivered visible through PostgREST);
  2. throughput: N messages posted by C concurrent clients; accept rate, and the time
     until all are delivered.
Results are appended to bench/results/e2e.jsonl and printed.

    uv run python -m bench.e2e [--latency-n 200] [--burst-n 2000] [--clients 16] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shutil
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from hermes.cluster import LocalCluster
from hermes.migrate import migrate
from hermes.services import STATE, StackConfig, Supervisor, free_port, stack_specs

RESULTS = Path(__file__).resolve().parent / "results"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(pct(values, 50) * 1000, 1),
        "p95_ms": round(pct(values, 95) * 1000, 1),
        "p99_ms": round(pct(values, 99) * 1000, 1),
        "mean_ms": round(statistics.fmean(values) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
    }


def latency(cfg: StackConfig, owner: str, token: str, n: int) -> dict[str, Any]:
    client_side: list[float] = []
    ids: list[str] = []
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(headers=headers, timeout=10) as api, httpx.Client(headers=headers) as rest:
        for i in range(n):
            t0 = time.perf_counter()
            r = api.post(
                f"{cfg.api_url}/v1/messages",
                json={"to": f"+1415555{i % 10000:04d}", "body": f"lat {i}"},
            )
            r.raise_for_status()
            mid = r.json()["id"]
            while True:
                rows = rest.get(
                    f"{cfg.postgrest_url}/messages", params={"id": f"eq.{mid}", "select": "status"}
                ).json()
                if rows and rows[0]["status"] == "delivered":
                    break
                time.sleep(0.002)
            client_side.append(time.perf_counter() - t0)
            ids.append(mid)
    with psycopg.connect(owner) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM completed_at - created_at)::float8,"
            "       extract(epoch FROM sent_at - created_at)::float8"
            "  FROM app.messages WHERE id = ANY(%s::uuid[])",
            (ids,),
        ).fetchall()
    return {
        "n": n,
        "client_post_to_delivered_visible": summary(client_side),
        "db_accepted_to_delivered": summary([float(r[0]) for r in rows]),
        "db_accepted_to_handed_off": summary([float(r[1]) for r in rows]),
    }


async def burst(cfg: StackConfig, owner: str, token: str, n: int, clients: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    accept: list[float] = []

    async def client(c: httpx.AsyncClient) -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            t0 = time.perf_counter()
            r = await c.post(
                f"{cfg.api_url}/v1/messages",
                json={"to": f"+1628555{i % 10000:04d}", "body": f"burst {i}"},
            )
            r.raise_for_status()
            accept.append(time.perf_counter() - t0)

    start = time.perf_counter()
    async with httpx.AsyncClient(headers=headers, timeout=30) as c:
        await asyncio.gather(*(client(c) for _ in range(clients)))
    accepted_s = time.perf_counter() - start
    deadline = time.monotonic() + 300
    with psycopg.connect(owner, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE status = 'delivered'), count(*),"
                "       count(*) FILTER (WHERE completed_at IS NULL)"
                "  FROM app.messages WHERE body LIKE 'burst %%'"
            ).fetchone()
            assert row is not None
            if row[2] == 0:
                break
            time.sleep(0.05)
        assert row is not None
        drained_s = time.perf_counter() - start
        stats = conn.execute(
            "SELECT extract(epoch FROM max(completed_at) - min(created_at))::float8 FROM app.messages"
            " WHERE body LIKE 'burst %%'"
        ).fetchone()
    assert stats is not None
    return {
        "n": n,
        "clients": clients,
        "delivered": row[0],
        "not_terminal_after_300s": row[2],
        "accept_rate_per_s": round(n / accepted_s, 1),
        "accept_latency": summary(accept),
        "end_to_end_rate_per_s": round(n / drained_s, 1),
        "first_accept_to_last_delivered_s": round(float(stats[0]), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-n", type=int, default=200)
    parser.add_argument("--burst-n", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    cluster = LocalCluster(
        datadir=STATE / "bench-pgdata", logfile=STATE / "bench-postgres.log", port=free_port()
    )
    if cluster.datadir.exists():
        shutil.rmtree(cluster.datadir, ignore_errors=True)
    cluster.start()
    sup = Supervisor(log=(STATE / "bench-stack.log").open("w"))
    try:
        cluster.ensure_database("bench")
        owner = cluster.dsn("bench")
        migrate(owner)
        cfg = StackConfig(
            db_host="127.0.0.1",
            db_port=cluster.port,
            db_name="bench",
            api_port=free_port(),
            postgrest_port=free_port(),
            sim_port=free_port(),
            run_dir=STATE / "bench-run",
            workers=args.workers,
            worker_env={"HERMES_LOG_LEVEL": "WARNING", "HERMES_JOB_POLL_INTERVAL": "5"},
            sim_env={"SIM_TWILIO_RECEIPT_DELAY_MS": "0", "SIM_TWILIO_LATENCY_MS": "0"},
        )
        with psycopg.connect(owner, autocommit=True) as conn:
            row = conn.execute(
                "SELECT app.create_tenant(NULL, 'Bench', 'test', '+15005550006')->'api_key'->>'token'"
            ).fetchone()
        assert row is not None
        token = str(row[0])
        for spec in stack_specs(cfg):
            sup.start(spec)
        result = {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
            "workers": args.workers,
            "latency": latency(cfg, owner, token, args.latency_n),
            "burst": asyncio.run(burst(cfg, owner, token, args.burst_n, args.clients)),
        }
    finally:
        sup.stop()
        cluster.stop()
    RESULTS.mkdir(exist_ok=True)
    with (RESULTS / "e2e.jsonl").open("a") as f:
        f.write(json.dumps(result) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
