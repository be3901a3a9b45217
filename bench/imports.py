"""``python -m bench.imports``: the import pipeline's benchmark (#5).

    uv run python -m bench.imports                        # 100k and 1M rows x 40 columns
    uv run python -m bench.imports --rows 100000 --quick  # one size, no baseline repeat

For each size, on a fresh tuned cluster (hermes.cluster, as make run's):

1. a generated contact file (fixtures/contacts.py, seed 1, cached under
   .hermes/bench-imports/);
2. the baseline: a raw COPY of the same file into an unlogged table (each record one
   text value -- CSV quoting honoured, so quoted newlines stay in their record, but no
   splitting into fields: nothing that ragged rows could break), then one
   set-based pass over it (``string_to_array`` of every line into a second unlogged
   table) -- what the database needs at the least to ingest and touch every row;
3. the import end to end, through the real processes: the command API (one uvicorn
   process: LAND is one upload) and ``--import-workers`` import workers, the file
   POSTed as multipart, timed from the first byte sent to ``status = completed``.

Reported per size: the wall time of each stage (app.imports.stage_seconds) and its
rows/s, the end-to-end time and its ratio to the baseline, CPU seconds per process
group (PostgreSQL, API, import workers), peak RSS per Python process (VmHWM), and the
counts. Results append to bench/results/imports.jsonl.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench import procstat
from bench.openloop import create_tenant, git_commit, read_settings
from fixtures.contacts import Generator
from hermes.cluster import LocalCluster, cpu_count, memory_bytes
from hermes.migrate import migrate
from hermes.services import (
    STATE,
    StackConfig,
    Supervisor,
    api_spec,
    free_port,
    import_worker_spec,
)

RESULTS = Path(__file__).resolve().parent / "results"
FILES = STATE / "bench-imports"
COUNTS = (
    "rows_total",
    "rows_rejected",
    "rows_accepted",
    "identities_created",
    "identities_matched",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.imports", description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, action="append", help="rows per file (repeatable)")
    p.add_argument("--columns", type=int, default=40)
    p.add_argument("--import-workers", type=int, default=2, help="import worker processes")
    p.add_argument("--quick", action="store_true", help="100k rows only")
    p.add_argument("--timeout", type=float, default=1800, help="seconds an import may take")
    p.add_argument("--name", default=None, help="a label for the result line")
    args = p.parse_args(argv)
    if not args.rows:
        args.rows = [100_000] if args.quick else [100_000, 1_000_000]
    return args


def contact_file(rows: int, columns: int) -> Path:
    FILES.mkdir(parents=True, exist_ok=True)
    path = FILES / f"contacts-{rows}x{columns}-seed1.csv"
    if not path.exists():
        t0 = time.monotonic()
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8", newline="") as out:
            Generator(rows=rows, columns=columns, seed=1).write(out)
        tmp.rename(path)
        print(f"generated {path.name} in {time.monotonic() - t0:.1f} s", flush=True)
    return path


def baseline(dsn: str, path: Path) -> dict[str, Any]:
    """Raw COPY into an unlogged table, then one set-based pass; seconds each."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_raw, bench_pass")
        conn.execute("CREATE UNLOGGED TABLE bench_raw (line text)")
        t0 = time.monotonic()
        with (
            conn.cursor().copy(
                "COPY bench_raw FROM STDIN WITH (FORMAT csv, DELIMITER E'\\x01')"
            ) as copy,
            path.open("rb") as f,
        ):
            while chunk := f.read(1 << 20):
                copy.write(chunk)
        t_copy = time.monotonic() - t0
        t1 = time.monotonic()
        conn.execute(
            "CREATE UNLOGGED TABLE bench_pass AS "
            "SELECT row_number() OVER () AS n, string_to_array(line, ',') AS fields FROM bench_raw"
        )
        t_pass = time.monotonic() - t1
        lines = conn.execute("SELECT count(*) FROM bench_raw").fetchone()
        conn.execute("DROP TABLE bench_raw, bench_pass")
    return {
        "copy_s": round(t_copy, 2),
        "pass_s": round(t_pass, 2),
        "total_s": round(t_copy + t_pass, 2),
        "lines": lines[0] if lines else None,
    }


def peak_rss_mib(pids: set[int]) -> dict[str, float]:
    """VmHWM (peak resident set) of each live process, MiB, by command line."""
    out: dict[str, float] = {}
    for pid in sorted(pids):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                out[f"{pid} {cmd[-60:].strip()}"] = round(int(line.split()[1]) / 1024, 1)
    return out


def run_one(args: argparse.Namespace, rows: int) -> dict[str, Any]:
    path = contact_file(rows, args.columns)
    cluster = LocalCluster(
        datadir=STATE / "bench-imports-pgdata",
        logfile=STATE / "bench-imports-postgres.log",
        port=free_port(),
    )
    if cluster.datadir.exists():
        shutil.rmtree(cluster.datadir, ignore_errors=True)
    cluster.start()
    sup = Supervisor(log=(STATE / "bench-imports-stack.log").open("w"))
    result: dict[str, Any] = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "name": args.name,
        "rows": rows,
        "columns": args.columns,
        "file_mib": round(path.stat().st_size / 1024**2, 1),
        "import_workers": args.import_workers,
        "machine": {
            "cpus": cpu_count(),
            "memory_gib": round(memory_bytes() / 1024**3, 1),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
    }
    try:
        cluster.ensure_database("bench")
        owner = cluster.dsn("bench")
        result["settings"] = read_settings(owner)
        result["baseline"] = baseline(owner, path)
        print(f"{rows:,} rows: baseline {result['baseline']}", flush=True)
        migrate(owner)
        token = create_tenant(owner)
        cfg = StackConfig(
            db_host="127.0.0.1",
            db_port=cluster.port,
            db_name="bench",
            api_port=free_port(),
            postgrest_port=free_port(),
            sim_port=free_port(),
            run_dir=STATE / "bench-imports-run",
            api_processes=1,
            import_workers=args.import_workers,
        )
        sup.start(api_spec(cfg))
        for i in range(args.import_workers):
            sup.start(import_worker_spec(cfg, i + 1))
        pm = cluster.postmaster_pid()
        assert pm is not None
        groups = [
            procstat.Group("postgresql", [pm]),
            procstat.Group("api", [sup.procs["api"].pid]),
            procstat.Group(
                "import_workers",
                [sup.procs[f"import-worker{i + 1}"].pid for i in range(args.import_workers)],
            ),
        ]
        before = procstat.sample(groups)
        t0 = time.monotonic()
        with path.open("rb") as f, httpx.Client(base_url=cfg.api_url, timeout=args.timeout) as c:
            r = c.post(
                "/v1/imports",
                headers={"Authorization": f"Bearer {token}"},
                files={"file": (path.name, f, "text/csv")},
            )
            accepted_s = time.monotonic() - t0
            r.raise_for_status()
            import_id = r.json()["id"]
            while True:
                body = c.get(
                    f"/v1/imports/{import_id}", headers={"Authorization": f"Bearer {token}"}
                ).json()
                if body["status"] in ("completed", "failed"):
                    break
                if time.monotonic() - t0 > args.timeout:
                    raise TimeoutError(f"import not done after {args.timeout} s: {body}")
                time.sleep(0.2)
        total_s = time.monotonic() - t0
        after = procstat.sample(groups)
        cpu = procstat.delta(before, after)
        members: set[int] = set()
        procs = procstat.all_procs()
        for g in groups[1:]:
            members |= procstat.descendants(g.roots, procs)
        stages = body["stage_seconds"]
        per_stage = {
            s: {"seconds": stages[s], "rows_per_s": round(rows / stages[s]) if stages[s] else None}
            for s in ("land", "parse", "merge")
            if s in stages
        }
        with psycopg.connect(owner) as conn:
            sizes = conn.execute(
                "SELECT pg_size_pretty(pg_total_relation_size('app.file_rows')), "
                "pg_size_pretty(pg_total_relation_size('app.import_extractions')), "
                "pg_size_pretty(pg_database_size('bench'))"
            ).fetchone()
        result |= {
            "import": {
                "status": body["status"],
                "accepted_after_s": round(accepted_s, 2),
                "end_to_end_s": round(total_s, 2),
                "rows_per_s": round(rows / total_s),
                "stages": per_stage,
                "ratio_to_baseline": round(total_s / result["baseline"]["total_s"], 2),
                "counts": {k: body[k] for k in COUNTS},
            },
            "cpu_s": {k: round(v, 1) for k, v in cpu.items() if not k.startswith("machine")},
            "peak_rss_mib": peak_rss_mib(members),
            "sizes": {"file_rows": sizes[0], "import_extractions": sizes[1], "database": sizes[2]}
            if sizes
            else {},
        }
    finally:
        sup.stop()
        cluster.stop()
    return result


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    for rows in args.rows:
        result = run_one(args, rows)
        with (RESULTS / "imports.jsonl").open("a") as out:
            out.write(json.dumps(result) + "\n")
        print(json.dumps({k: result[k] for k in ("rows", "baseline", "import", "cpu_s",
                                                  "peak_rss_mib", "sizes")}, indent=1),
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
