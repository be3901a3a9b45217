"""The embedded default PostgreSQL cluster under ``.hermes/pgdata`` (kept between runs).

Started through ``scripts/pg_ctl``, which runs the server as the ``postgres`` user
when we are root. It listens on 127.0.0.1 only, with trust authentication for local
connections: a development cluster, not a production one.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from hermes.services import ROOT, STATE

PG_CTL = ROOT / "scripts" / "pg_ctl"


@dataclass(frozen=True)
class LocalCluster:
    datadir: Path = STATE / "pgdata"
    logfile: Path = STATE / "postgres.log"
    port: int = 54329
    user: str = "postgres"

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

    def start(self) -> None:
        if not self.initialized():
            self.init()
        if self.running():
            return
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=/tmp "
            "-c max_connections=200"
        )
        argv = [str(PG_CTL), "start", "-w", "-D", str(self.datadir), "-l", str(self.logfile)]
        subprocess.run(
            [*argv, "-o", opts],
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

    def ensure_database(self, name: str) -> None:
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
