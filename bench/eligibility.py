"""The cost of one eligibility check at scale.

    uv run python -m bench.eligibility [--consent-events 1000000] [--contacts 10000000]
                                       [--checks 3000] [--batch 100]

A throwaway cluster (the benchmark's settings), migrated, 100 tenants; then, loaded
set-based in SQL: ``--consent-events`` consent events (opt-outs and later opt-ins over
a fifth as many addresses, all scopes and channels, a share global), a suppression list
of 1% of the addresses, and ``--contacts`` contact-history rows (the cooldown store,
verticals mixed, a quarter within the cooldowns). Then it measures:

  single   ``private.check_send_eligibility`` for one random recipient at a time
           (a mix: opted out, lifted by an opt-in, suppressed, in a cooldown, never
           seen), marketing in a vertical, so every rule runs -- consent cells,
           suppressions, cooldowns, quiet hours: p50/p99/max of the server's execution
           time (``clock_timestamp()`` around the call, no network) and of the client's
           round trip;
  batch    ``private.send_eligibility`` over ``--batch`` candidates (what the claim
           and the batch intake run): per call and per candidate.

Appends a JSON line to ``bench/results/eligibility.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import psycopg

from bench.openloop import git_commit
from hermes.cluster import LocalCluster
from hermes.migrate import migrate
from hermes.services import free_port


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def load(conn: psycopg.Connection, consent_events: int, contacts: int) -> dict[str, float]:
    timings: dict[str, float] = {}

    def step(name: str, sql: str) -> None:
        t0 = time.perf_counter()
        conn.execute(sql.encode())
        timings[name] = round(time.perf_counter() - t0, 1)
        print(f"  loaded {name} in {timings[name]} s", flush=True)

    step(
        "tenants",
        "SELECT private.create_tenant(NULL, 'Bench ' || i, 'test', '+15005550006') "
        "FROM generate_series(1, 100) i",
    )
    conn.execute(
        "CREATE TEMP TABLE t AS SELECT row_number() OVER (ORDER BY id) AS n, id FROM app.tenants"
    )
    addresses = max(consent_events // 5, 1)
    # Addresses +1415 5nn nnnn style: distinct E.164 numbers, n = 1..addresses.
    step(
        "consent_events",
        f"""
      INSERT INTO app.consent_events (tenant_id, address, address_hash, channel, kind, scope, scope_ref,
                                      source, occurred_at, recorded_at)
      SELECT CASE WHEN g % 50 = 0 THEN NULL ELSE t.id END, a.addr, private.address_hash(a.addr),
             (ARRAY['sms', 'all', 'email', 'whatsapp'])[1 + g % 4],
             CASE WHEN g % 3 = 0 THEN 'opt_in' ELSE 'opt_out' END,
             CASE WHEN g % 50 = 0 THEN 'global' WHEN g % 7 = 0 THEN 'vertical' ELSE 'tenant' END,
             CASE WHEN g % 50 <> 0 AND g % 7 = 0 THEN 'solar' ELSE '' END,
             'import', now() - (g % 1000) * interval '1 hour', now()
        FROM generate_series(1, {consent_events}) g
        JOIN t ON t.n = 1 + (g / 5) % 100
       CROSS JOIN LATERAL (SELECT '+1415' || lpad(((g / 5) % {addresses})::text, 7, '0') AS addr) a
    """,
    )
    step(
        "suppressions",
        f"""
      INSERT INTO app.suppression_events (tenant_id, address, address_hash, list, action, source)
      SELECT t.id, a.addr, private.address_hash(a.addr), 'do_not_contact', 'add', 'import'
        FROM generate_series(1, {max(addresses // 100, 1)}) g
        JOIN t ON t.n = 1 + g % 100
       CROSS JOIN LATERAL (SELECT '+1415' || lpad((g * 97 % {addresses})::text, 7, '0') AS addr) a
    """,
    )
    step(
        "contact_history",
        f"""
      INSERT INTO app.contact_history (tenant_id, address_hash, vertical, last_contact_at, source)
      SELECT t.id, private.address_hash('+1212' || lpad((g / 2)::text, 7, '0')),
             (ARRAY['solar', 'roofing', 'insurance', '*'])[1 + g % 4],
             now() - (g % 400) * interval '1 day', 'import'
        FROM generate_series(1, {contacts}) g
        JOIN t ON t.n = 1 + g % 100
      ON CONFLICT DO NOTHING
    """,
    )
    step("analyze", "ANALYZE")
    return timings


def measure(
    conn: psycopg.Connection, checks: int, batch: int, addresses: int, contacts: int
) -> dict[str, object]:
    rng = random.Random(7)
    tenants = [r[0] for r in conn.execute("SELECT id FROM t ORDER BY n").fetchall()]

    def candidate() -> tuple[object, str]:
        # Each loaded address belongs to one tenant (see load()): ask that tenant.
        kind = rng.random()
        if kind < 0.5:  # has consent events
            n = rng.randrange(addresses)
            return tenants[n % 100], "+1415" + str(n).zfill(7)
        if kind < 0.8:  # in the contact history
            m = rng.randrange(contacts // 2)
            return tenants[(2 * m) % 100], "+1212" + str(m).zfill(7)
        return rng.choice(tenants), "+1312" + str(rng.randrange(10**7)).zfill(7)  # never seen

    server, client, outcomes = [], [], {"eligible": 0, "refused": 0, "deferred": 0}
    sql = """SELECT e.eligible, e.next_allowed_at IS NOT NULL,
                    extract(epoch FROM clock_timestamp() - t0) * 1000
               FROM (SELECT clock_timestamp() AS t0) s,
                    LATERAL private.check_send_eligibility(%s, 'sms', %s, '+15005550006', 'solar', 'marketing') e"""
    for i in range(checks + 200):
        tenant, to = candidate()
        t0 = time.perf_counter()
        row = conn.execute(sql, (tenant, to)).fetchone()
        elapsed = (time.perf_counter() - t0) * 1000
        assert row is not None
        if i >= 200:  # warm-up first
            server.append(float(row[2]))
            client.append(elapsed)
            outcomes["eligible" if row[0] else "deferred" if row[1] else "refused"] += 1
    batch_ms = []
    for _ in range(max(checks // batch, 10)):
        cands = [candidate() for _ in range(batch)]
        arr = (
            "ARRAY["
            + ",".join(
                f"ROW({i}, '{t}', 'sms', '{to}', '+15005550006', 'solar', 'marketing', NULL)"
                for i, (t, to) in enumerate(cands)
            )
            + "]::private.send_candidate[]"
        )
        row = conn.execute(
            f"SELECT extract(epoch FROM clock_timestamp() - t0) * 1000 FROM (SELECT clock_timestamp() AS t0) s, "
            f"LATERAL (SELECT count(*) FROM private.send_eligibility({arr}, now())) e"
        ).fetchone()
        assert row is not None
        batch_ms.append(float(row[0]))
    return {
        "single_server_ms": {
            "p50": round(pct(server, 50), 3),
            "p99": round(pct(server, 99), 3),
            "max": round(max(server), 3),
            "mean": round(statistics.mean(server), 3),
        },
        "single_client_ms": {"p50": round(pct(client, 50), 3), "p99": round(pct(client, 99), 3)},
        "outcomes": outcomes,
        "batch": {
            "size": batch,
            "calls": len(batch_ms),
            "p50_ms": round(pct(batch_ms, 50), 3),
            "p99_ms": round(pct(batch_ms, 99), 3),
            "per_candidate_ms": round(statistics.median(batch_ms) / batch, 4),
        },
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--consent-events", type=int, default=1_000_000)
    p.add_argument("--contacts", type=int, default=10_000_000)
    p.add_argument("--checks", type=int, default=3000)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--explain", action="store_true", help="log one batch's plans (auto_explain)")
    p.add_argument(
        "--results", default=str(Path(__file__).parent / "results" / "eligibility.jsonl")
    )
    args = p.parse_args(argv)
    print(
        f"== eligibility: {args.consent_events} consent events, {args.contacts} contact-history rows"
    )
    root = Path(tempfile.mkdtemp(prefix="hermes-eligibility-"))
    cluster = LocalCluster(datadir=root / "pgdata", logfile=root / "postgres.log", port=free_port())
    cluster.start()
    try:
        cluster.ensure_database("hermes")
        dsn = cluster.dsn("hermes")
        migrate(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            loaded = load(conn, args.consent_events, args.contacts)
            sizes = conn.execute(
                "SELECT (SELECT count(*) FROM app.consent_events), (SELECT count(*) FROM app.consent_state),"
                " (SELECT count(*) FROM app.suppressions), (SELECT count(*) FROM app.contact_history),"
                " pg_size_pretty(pg_total_relation_size('app.contact_history'))"
            ).fetchone()
            assert sizes is not None
            print(
                f"  rows: consent_events {sizes[0]}, consent_state {sizes[1]}, suppressions {sizes[2]},"
                f" contact_history {sizes[3]} ({sizes[4]})",
                flush=True,
            )
            if args.explain:
                conn.execute("LOAD 'auto_explain'")
                for k, v in (
                    ("log_min_duration", "0"),
                    ("log_nested_statements", "on"),
                    ("log_analyze", "on"),
                ):
                    conn.execute(f"SET auto_explain.{k} = {v}")
            result = measure(
                conn, args.checks, args.batch, max(args.consent_events // 5, 1), args.contacts
            )
            if args.explain:
                shutil.copy(root / "postgres.log", "/tmp/eligibility-explain.log")
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
    result |= {
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "commit": git_commit(),
        "consent_events": sizes[0],
        "consent_cells": sizes[1],
        "suppressions": sizes[2],
        "contact_history": sizes[3],
        "contact_history_size": sizes[4],
        "load_seconds": loaded,
    }
    print(json.dumps(result, indent=1))
    with open(args.results, "a") as f:
        f.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
