"""The embedded default PostgreSQL cluster under ``.hermes/pgdata`` (kept between runs).

Started through ``scripts/pg_ctl``, which runs the server as the ``postgres`` user
when we are root. It listens on 127.0.0.1 only, with trust authentication for local
connections: a development cluster, not a production one.

Its memory and WAL settings are derived from the machine (:func:`machine_settings`):
a quarter of the RAM for shared buffers (at most 4 GB), larger WAL buffers, fewer
forced checkpoints. Durability is never traded for speed: ``fsync``,
``synchronous_commit`` and ``full_page_writes`` keep their defaults (on), so an
accepted message survives a crash. ``LocalCluster(settings=...)`` adds or overrides
settings (the benchmark adds ``shared_preload_libraries=pg_stat_statements``).
"""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from hermes.services import ROOT, STATE

PG_CTL = ROOT / "scripts" / "pg_ctl"

MB = 1024**2
GB = 1024**3

# Never set by machine_settings, and refused in LocalCluster.settings: turning them
# off loses committed transactions (accepted messages) in a crash.
DURABILITY = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}


def memory_bytes() -> int:
    """The RAM this process may use: MemTotal, or the cgroup limit when lower."""
    total = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                total = int(line.split()[1]) * 1024
                break
    except OSError:
        pass
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and 0 < int(raw) < (total or 1 << 62):
            total = int(raw)
    return total or 1 * GB


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _mb(n: int) -> str:
    return f"{max(1, n // MB)}MB"


def machine_settings(memory: int | None = None, cpus: int | None = None) -> dict[str, str]:
    """Server settings for a machine with ``memory`` bytes of RAM and ``cpus`` cores
    (default: this one). Memory: shared_buffers 25 % (capped at 4 GB),
    effective_cache_size 75 %, work_mem and maintenance_work_mem from what is left.
    WAL: larger buffers, max_wal_size 4 GB and a 15-minute checkpoint_timeout so
    checkpoints (and their full-page writes) are rare, compressed full-page images."""
    mem = memory if memory is not None else memory_bytes()
    cores = cpus if cpus is not None else cpu_count()
    max_connections = 200
    shared_buffers = min(4 * GB, max(128 * MB, mem // 4))
    work_mem = min(64 * MB, max(4 * MB, (mem - shared_buffers) // (max_connections * 4)))
    return {
        "max_connections": str(max_connections),
        "shared_buffers": _mb(shared_buffers),
        "effective_cache_size": _mb(max(shared_buffers, mem * 3 // 4)),
        "work_mem": _mb(work_mem),
        "maintenance_work_mem": _mb(min(1 * GB, max(64 * MB, mem // 32))),
        "wal_buffers": "64MB" if shared_buffers >= 2 * GB else "16MB",
        "max_wal_size": "4GB",
        "min_wal_size": "1GB",
        "checkpoint_timeout": "15min",
        "checkpoint_completion_target": "0.9",
        "wal_compression": "on",
        # Queue tables (the receipt inbox's queue, pgqueuer's jobs) take thousands of
        # inserts and deletes a second; at the default 1-minute naptime their dead rows
        # pile up between visits and every take walks over them.
        "autovacuum_naptime": "10s",
        # SSD-class storage.
        "random_page_cost": "1.1",
        "effective_io_concurrency": "200",
        "max_worker_processes": str(max(8, cores)),
        "max_parallel_workers_per_gather": str(max(0, min(4, cores // 2))),
        "max_parallel_workers": str(cores),
    }


@dataclass(frozen=True)
class LocalCluster:
    datadir: Path = STATE / "pgdata"
    logfile: Path = STATE / "postgres.log"
    port: int = 54329
    user: str = "postgres"
    # Added to (and overriding) machine_settings(); e.g. shared_preload_libraries.
    settings: dict[str, str] = field(default_factory=dict, hash=False)
    # False: only the connection settings and max_connections, PostgreSQL's defaults
    # for everything else.
    tune: bool = True

    def dsn(self, dbname: str = "postgres", role: str | None = None) -> str:
        return f"postgresql://{role or self.user}@127.0.0.1:{self.port}/{dbname}"

    def initialized(self) -> bool:
        return (self.datadir / "PG_VERSION").exists()

    def init(self) -> None:
        self.datadir.parent.mkdir(parents=True, exist_ok=True)
        opts = f"--username={self.user} --auth=trust --encoding=UTF8 --locale=C.UTF-8"
        subprocess.run(
            [str(PG_CTL), "initdb", "-D", str(self.datadir), "-o", opts],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def running(self) -> bool:
        r = subprocess.run(
            [str(PG_CTL), "status", "-D", str(self.datadir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return r.returncode == 0

    def server_settings(self) -> dict[str, str]:
        """Every ``-c`` setting the server is started with."""
        for name, safe in DURABILITY.items():
            if name in self.settings and self.settings[name] != safe:
                raise ValueError(f"{name}={self.settings[name]} would lose committed data")
        base = machine_settings() if self.tune else {"max_connections": "200"}
        return base | self.settings

    def server_options(self) -> str:
        """The ``pg_ctl -o`` string (pg_ctl runs it through /bin/sh: each value quoted)."""
        conn = {"listen_addresses": "127.0.0.1", "unix_socket_directories": "/tmp"}
        opts = [f"-p {self.port}"]
        for name, value in (conn | self.server_settings()).items():
            opts.append("-c " + shlex.quote(f"{name}={value}"))
        return " ".join(opts)

    def start(self) -> None:
        if not self.initialized():
            self.init()
        if self.running():
            return
        argv = [str(PG_CTL), "start", "-w", "-D", str(self.datadir), "-l", str(self.logfile)]
        subprocess.run(
            [*argv, "-o", self.server_options()],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.running():
            subprocess.run(
                [str(PG_CTL), "stop", "-m", "fast", "-D", str(self.datadir)],
                check=True,
                stdout=subprocess.DEVNULL,
            )

    def postmaster_pid(self) -> int | None:
        """The server's process id (first line of postmaster.pid), if it runs."""
        try:
            first = (self.datadir / "postmaster.pid").read_text().split("\n", 1)[0]
        except OSError:
            return None
        return int(first) if first.strip().isdigit() else None

    def ensure_database(self, name: str) -> None:
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
