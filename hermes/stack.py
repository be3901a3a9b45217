"""``make run``: Hermes on its embedded default, in the foreground.

A local PostgreSQL cluster (.hermes/pgdata), migrations, then PostgREST, the command
API, a worker and the Twilio simulator with prefixed logs. On first start it creates a
demo tenant and writes .hermes/demo.env. Ctrl-C stops everything cleanly.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import time
from pathlib import Path

import psycopg

from hermes.cluster import LocalCluster
from hermes.migrate import migrate
from hermes.services import STATE, WHATSAPP_NUMBER, StackConfig, Supervisor, stack_specs

DEMO_ENV = STATE / "demo.env"


def read_env(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = shlex.split(value)[0] if value.strip() else ""
    return values


def ensure_demo(cluster: LocalCluster, db: str, cfg: StackConfig) -> dict[str, str]:
    """Creates the demo tenant and an admin key once; later runs reuse them."""
    if DEMO_ENV.exists():
        env = read_env(DEMO_ENV)
        if env.get("DATABASE_URL") == cluster.dsn(db):
            return env
    with psycopg.connect(cluster.dsn(db), autocommit=True) as conn:
        admin = conn.execute("SELECT app.create_admin_key('make run')->>'token'").fetchone()
        tenant = conn.execute(
            "SELECT private.create_tenant(NULL, 'Demo', 'sandbox', '+15005550006', "
            "'Hermes Demo <demo@hermes.example>', %s)",
            (WHATSAPP_NUMBER,),
        ).fetchone()
    assert admin is not None and tenant is not None
    env = {
        "HERMES_API_URL": cfg.api_url,
        "HERMES_POSTGREST_URL": cfg.postgrest_url,
        "DATABASE_URL": cluster.dsn(db),
        "HERMES_ADMIN_KEY": str(admin[0]),
        "HERMES_API_KEY": str(tenant[0]["api_key"]["token"]),
        "HERMES_TENANT_ID": str(tenant[0]["tenant"]["id"]),
    }
    DEMO_ENV.write_text(
        "# Written by `make run` on first start. Load with: set -a; . .hermes/demo.env; set +a\n"
        + "".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items())
    )
    DEMO_ENV.chmod(0o600)
    return env


def banner(env: dict[str, str]) -> str:
    return f"""
Hermes is up.
  command API          {env["HERMES_API_URL"]}
  read API (PostgREST) {env["HERMES_POSTGREST_URL"]}

Credentials are in .hermes/demo.env. Try, in another shell:

  set -a; . .hermes/demo.env; set +a

  curl -s -X POST "$HERMES_API_URL/v1/messages" \\
       -H "Authorization: Bearer $HERMES_API_KEY" -H "Content-Type: application/json" \\
       -d '{{"to": "+14155550123", "body": "Hello from Hermes"}}'

  curl -s "$HERMES_POSTGREST_URL/messages?select=id,to,status&order=created_at.desc&limit=5" \\
       -H "Authorization: Bearer $HERMES_API_KEY"

(+15005550010 ends undelivered; +15005550001 is an invalid number.) Ctrl-C stops everything.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run Hermes locally in the foreground.")
    parser.add_argument("--db", default=os.environ.get("HERMES_DB", "hermes"))
    parser.add_argument(
        "--pg-port", type=int, default=int(os.environ.get("HERMES_PG_PORT", "54329"))
    )
    parser.add_argument(
        "--api-port", type=int, default=int(os.environ.get("HERMES_API_PORT", "8000"))
    )
    parser.add_argument(
        "--receiver-port",
        type=int,
        default=int(os.environ.get("HERMES_RECEIVER_PORT", "8001")),
        help="provider callbacks are served by a process of their own on this port",
    )
    parser.add_argument(
        "--postgrest-port", type=int, default=int(os.environ.get("HERMES_POSTGREST_PORT", "3000"))
    )
    parser.add_argument(
        "--sim-port", type=int, default=int(os.environ.get("HERMES_SIM_PORT", "8089"))
    )
    parser.add_argument(
        "--ses-port", type=int, default=int(os.environ.get("HERMES_SES_SIM_PORT", "8090"))
    )
    parser.add_argument(
        "--fcm-port", type=int, default=int(os.environ.get("HERMES_FCM_SIM_PORT", "8091"))
    )
    parser.add_argument(
        "--vonage-port", type=int, default=int(os.environ.get("HERMES_VONAGE_SIM_PORT", "8093"))
    )
    parser.add_argument(
        "--whatsapp-port",
        type=int,
        default=int(os.environ.get("HERMES_WHATSAPP_SIM_PORT", "8092")),
    )
    parser.add_argument("--workers", type=int, default=int(os.environ.get("HERMES_WORKERS", "1")))
    parser.add_argument(
        "--api-processes",
        type=int,
        default=int(os.environ.get("HERMES_API_PROCESSES", str(os.cpu_count() or 1))),
        help="uvicorn processes of the command API (default: one per core)",
    )
    args = parser.parse_args(argv)

    cluster = LocalCluster(port=args.pg_port)
    print(
        f"postgres   | starting cluster {cluster.datadir} on 127.0.0.1:{cluster.port}", flush=True
    )
    cluster.start()
    cluster.ensure_database(args.db)
    result = migrate(cluster.dsn(args.db))
    print(
        f"migrate    | {len(result.migrations_applied)} migrations, "
        f"{len(result.repeatables_applied)} repeatable files applied",
        flush=True,
    )
    cfg = StackConfig(
        db_host="127.0.0.1",
        db_port=cluster.port,
        db_name=args.db,
        api_port=args.api_port,
        receiver_port=args.receiver_port,
        postgrest_port=args.postgrest_port,
        sim_port=args.sim_port,
        ses_port=args.ses_port,
        fcm_port=args.fcm_port,
        whatsapp_port=args.whatsapp_port,
        vonage_port=args.vonage_port,
        run_dir=STATE / "run",
        workers=args.workers,
        api_processes=args.api_processes,
    )
    env = ensure_demo(cluster, args.db, cfg)

    # A plain flag: a handler that took a lock (Event.set) could deadlock with the main
    # thread holding that lock inside Event.wait.
    stopping: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: stopping.append(signum))

    sup = Supervisor()
    try:
        for spec in stack_specs(cfg):
            sup.start(spec)
        print(banner(env), flush=True)
        while not stopping:
            time.sleep(0.2)
            dead = sup.failed()
            if dead:
                print(f"hermes     | {', '.join(dead)} exited; stopping", file=sys.stderr)
                return 1
        return 0
    finally:
        print("hermes     | stopping services", flush=True)
        sup.stop()
        cluster.stop()
        print("hermes     | stopped", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
