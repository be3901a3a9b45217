"""Per-channel latency: accept -> hand-off and accept -> final, p50/p99, per channel.

    uv run python -m bench.channels [--rate 50] [--duration 20] [--quick]

One run, on a throwaway cluster (.hermes/bench-channels-pgdata, tuned by hermes.cluster
for this machine) and a stack with every provider simulator (hermes.services.stack_specs:
Twilio, SES, FCM, WhatsApp Cloud API, Vonage), each at zero latency and zero receipt
delay (--receipt-delay-ms), status callbacks on a receiver process of their own:

1. two tenants (the operator's admin key, POST /v1/tenants), transactional and without
   content dedup (so quiet hours and repeated bodies do not interfere); the second
   routes SMS through Vonage (PUT /v1/policy {"providers": {"sms": ["vonage"]}});
2. a warm-up (a few messages of every kind, until terminal: SDK clients, the FCM
   access token, TLS to Vonage, the SNS subscription), VACUUM ANALYZE, CHECKPOINT;
3. an open-loop load: --rate messages a second for --duration seconds, round-robin over
   the five kinds (sms/twilio, sms/vonage, email/ses, push/fcm, whatsapp/cloud), one
   POST /v1/messages each, on a fixed schedule whatever the answers;
4. a drain until every accepted message is terminal (or --drain seconds);
5. the figures, from the database: per kind, app.messages.created_at (accept) to the
   attempt's claimed_at (first claim) and handed_off_at (app.message_attempts), and
   to messages.completed_at of the delivered ones; the client's accept latency; a loss
   check (every accepted id in app.messages, in exactly one terminal state, on the
   expected provider; each provider's ledger as many sends as hand-offs recorded);
   CPU seconds per process group.

Prints a table and appends one JSON line to bench/results/<name>.jsonl (channels).
Recipients vary per message (a distinct number, address or device token each, all of
them the simulators' "delivered" cases), as in the send-path benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import ssl
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench import procstat
from bench.openloop import git_commit, lat_summary, read_settings
from hermes.cluster import LocalCluster, cpu_count, memory_bytes
from hermes.migrate import migrate
from hermes.services import (
    STATE,
    WHATSAPP_NUMBER,
    StackConfig,
    Supervisor,
    free_port,
    stack_specs,
)

RESULTS = Path(__file__).resolve().parent / "results"
TERMINAL = ("delivered", "undelivered", "failed", "rejected", "unknown")
# Transactional (no quiet hours: a run must not depend on the hour), no content dedup
# (the bodies repeat): tests/conftest.py's TEST_POLICY, the send-path bench's policy.
POLICY = {"default_category": "transactional", "content_dedup_seconds": 0}
SMS_FROM = "+15005550006"
EMAIL_FROM = "Hermes Bench <bench@hermes.example>"


@dataclass(frozen=True)
class Kind:
    name: str  # what the table shows
    channel: str  # app.messages.channel
    provider: str  # app.message_attempts.provider expected
    tenant: str  # "main" or "vonage" (the tenant routing SMS through Vonage)
    sim: str  # the simulator's service name (hermes.services)


KINDS: tuple[Kind, ...] = (
    Kind("sms/twilio", "sms", "twilio", "main", "twilio-sim"),
    Kind("sms/vonage", "sms", "vonage", "vonage", "vonage-sim"),
    Kind("email/ses", "email", "ses", "main", "ses-sim"),
    Kind("push/fcm", "push", "fcm", "main", "fcm-sim"),
    Kind("whatsapp/cloud", "whatsapp", "whatsapp", "main", "wa-sim"),
)
# What each simulator's /_sim/stats counts as a send it accepted.
SIM_ACCEPTED = {
    "twilio": "creates",
    "vonage": "accepted",
    "ses": "sent",
    "fcm": "accepted",
    "whatsapp": "accepted",
}
# ... and as a status callback it could not deliver to Hermes.
SIM_CALLBACK_FAILED = {
    "twilio": "callbacks_failed",
    "vonage": "receipts_failed",
    "ses": "notifications_failed",
    "whatsapp": "webhooks_failed",
}


def payload(kind: Kind, n: int) -> dict[str, Any]:
    """Message n of a kind: a recipient of its own, one the simulator delivers."""
    body = f"bench {kind.name} {n}"
    if kind.name == "sms/twilio":
        return {"channel": "sms", "to": f"+1628555{n % 10000:04d}", "body": body}
    if kind.name == "sms/vonage":
        return {"channel": "sms", "to": f"+1628556{n % 10000:04d}", "body": body}
    if kind.name == "email/ses":
        # Any address of the mailbox simulator's domain but its named fixtures
        # (bounce@, complaint@, ...) is delivered.
        to = f"bench-{n}@simulator.amazonses.com"
        return {"channel": "email", "to": to, "subject": "bench", "body": body}
    if kind.name == "push/fcm":
        to = f"bench-device-0123456789abcdef{n}"
        return {"channel": "push", "to": to, "title": "bench", "body": body}
    if kind.name == "whatsapp/cloud":
        return {"channel": "whatsapp", "to": f"+1628557{n % 10000:04d}", "body": body}
    raise ValueError(kind.name)


# --------------------------------------------------------------------------- options


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.channels", description=__doc__.split("\n")[0])
    p.add_argument("--rate", type=float, help="messages per second, all kinds together (50)")
    p.add_argument("--duration", type=float, help="seconds of load (20; --quick 8)")
    p.add_argument("--drain", type=float, help="seconds to wait for terminal (60; --quick 30)")
    p.add_argument("--quick", action="store_true", help="8 s of load, shorter drain")
    p.add_argument("--workers", type=int, default=1, help="worker processes (1)")
    p.add_argument("--api-processes", type=int, help="uvicorn processes (StackConfig's default)")
    p.add_argument(
        "--receipt-delay-ms",
        type=int,
        default=0,
        help="the simulators' delay between a message's receipts (0)",
    )
    p.add_argument("--max-outstanding", type=int, default=256, help="cap of open requests")
    p.add_argument("--timeout", type=float, default=30.0, help="request timeout (s)")
    p.add_argument("--name", default="channels", help="results file name (channels)")
    p.add_argument("--results-dir", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    args.rate = args.rate or 50.0
    args.duration = args.duration or (8.0 if args.quick else 20.0)
    args.drain = args.drain if args.drain is not None else (30.0 if args.quick else 60.0)
    return args


# ----------------------------------------------------------------------------- stack


def start_cluster() -> LocalCluster:
    """A fresh, tuned cluster of its own (not the send-path bench's directory)."""
    datadir = STATE / "bench-channels-pgdata"
    cluster = LocalCluster(
        datadir=datadir, logfile=STATE / "bench-channels-postgres.log", port=free_port()
    )
    if datadir.exists():
        shutil.rmtree(datadir, ignore_errors=True)
    cluster.start()
    return cluster


def stack_config(cluster: LocalCluster, args: argparse.Namespace) -> StackConfig:
    delay = str(args.receipt_delay_ms)
    extra: dict[str, Any] = {}
    if args.api_processes:
        extra["api_processes"] = args.api_processes
    return StackConfig(
        db_host="127.0.0.1",
        db_port=cluster.port,
        db_name="bench",
        api_port=free_port(),
        postgrest_port=free_port(),
        sim_port=free_port(),
        run_dir=STATE / "bench-channels-run",
        receiver_port=free_port(),
        workers=args.workers,
        import_workers=0,
        worker_env={"HERMES_LOG_LEVEL": "WARNING", "HERMES_JOB_POLL_INTERVAL": "5"},
        sim_env={
            "SIM_TWILIO_RECEIPT_DELAY_MS": delay,
            "SIM_TWILIO_LATENCY_MS": "0",
            "SIM_TWILIO_LOG_REQUESTS": "0",
        },
        ses_port=free_port(),
        ses_env={"SIM_SES_LATENCY_MS": "0", "SIM_SES_RECEIPT_DELAY_MS": delay},
        fcm_port=free_port(),
        fcm_env={"SIM_FCM_LATENCY_MS": "0"},
        whatsapp_port=free_port(),
        whatsapp_env={"SIM_WHATSAPP_LATENCY_MS": "0", "SIM_WHATSAPP_RECEIPT_DELAY_MS": delay},
        vonage_port=free_port(),
        vonage_env={"SIM_VONAGE_LATENCY_MS": "0", "SIM_VONAGE_RECEIPT_DELAY_MS": delay},
        **extra,
    )


def create_tenants(cfg: StackConfig, owner: str) -> dict[str, str]:
    """{"main": token, "vonage": token}: the second routes SMS through Vonage."""
    with psycopg.connect(owner, autocommit=True) as conn:
        row = conn.execute("SELECT app.create_admin_key('bench')->>'token'").fetchone()
        assert row is not None
        admin = str(row[0])
        tokens: dict[str, str] = {}
        for tenant in ("main", "vonage"):
            with httpx.Client(
                base_url=cfg.api_url, headers={"Authorization": f"Bearer {admin}"}, timeout=30
            ) as api:
                r = api.post(
                    "/v1/tenants",
                    json={
                        "name": f"Bench {tenant}",
                        "default_sms_from": SMS_FROM,
                        "default_email_from": EMAIL_FROM,
                        "default_whatsapp_from": WHATSAPP_NUMBER,
                    },
                )
            if r.status_code != 201:
                raise RuntimeError(f"POST /v1/tenants: HTTP {r.status_code}: {r.text[:300]}")
            body = r.json()
            conn.execute(
                "SELECT private.set_tenant_policy(%s, NULL, %s::jsonb)",
                (body["tenant"]["id"], json.dumps(POLICY)),
            )
            tokens[tenant] = str(body["api_key"]["token"])
    with httpx.Client(
        base_url=cfg.api_url, headers={"Authorization": f"Bearer {tokens['vonage']}"}, timeout=30
    ) as api:
        r = api.put("/v1/policy", json={"providers": {"sms": ["vonage"]}})
    if r.status_code != 200 or r.json().get("providers") != {"sms": ["vonage"]}:
        raise RuntimeError(f"PUT /v1/policy: HTTP {r.status_code}: {r.text[:300]}")
    return tokens


def wait_terminal(owner: str, timeout: float) -> bool:
    """Until no message of the database is in flight (True), or timeout (False)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(owner, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT count(*) FROM app.messages WHERE completed_at IS NULL"
            ).fetchone()
            if row is not None and row[0] == 0:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.25)


def warm_up(cfg: StackConfig, owner: str, tokens: dict[str, str], per_kind: int = 3) -> int:
    """A few messages of every kind through the whole path, until terminal."""
    n = 0
    for kind in KINDS:
        headers = {"Authorization": f"Bearer {tokens[kind.tenant]}"}
        with httpx.Client(base_url=cfg.api_url, headers=headers, timeout=30) as api:
            for i in range(per_kind):
                r = api.post("/v1/messages", json=payload(kind, 9000 + i))
                if r.status_code != 201:
                    raise RuntimeError(f"warm-up {kind.name}: HTTP {r.status_code}: {r.text[:300]}")
                n += 1
    if not wait_terminal(owner, 60):
        raise RuntimeError("warm-up messages did not reach a terminal state in 60 s")
    with psycopg.connect(owner, autocommit=True) as conn:
        bad = conn.execute(
            "SELECT channel, provider, status, error_code FROM app.messages"
            " WHERE status <> 'delivered'"
        ).fetchall()
    if bad:
        raise RuntimeError(f"warm-up messages not delivered: {bad}")
    return n


# ------------------------------------------------------------------------------ load


@dataclass
class Sent:
    kind: str
    sched: float  # s after the start: when it was due
    send: float = -1.0  # when the request left (-1: never)
    done: float = -1.0  # when its answer came
    status: int = -2  # HTTP status; 0: connection error, -1: timeout, -2: not sent
    id: str | None = None
    error: str | None = None


async def _offer(
    cfg: StackConfig, tokens: dict[str, str], args: argparse.Namespace
) -> tuple[float, list[Sent]]:
    """The open loop: request i at i / rate s after the start, round-robin over the
    kinds, whether or not earlier ones were answered. Returns (start epoch, records)."""
    limits = httpx.Limits(
        max_connections=args.max_outstanding, max_keepalive_connections=args.max_outstanding
    )
    headers = {k: {"Authorization": f"Bearer {t}"} for k, t in tokens.items()}
    total = int(args.rate * args.duration)
    records: list[Sent] = []
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(
        base_url=cfg.api_url, limits=limits, timeout=args.timeout
    ) as client:
        t0 = loop.time()
        t0_epoch = time.time()

        async def one(rec: Sent, kind: Kind, n: int) -> None:
            rec.send = loop.time() - t0
            try:
                r = await client.post(
                    "/v1/messages", json=payload(kind, n), headers=headers[kind.tenant]
                )
            except httpx.TimeoutException as exc:
                rec.status, rec.error = -1, f"timeout: {exc!r}"[:200]
            except httpx.HTTPError as exc:
                rec.status, rec.error = 0, f"{type(exc).__name__}: {exc}"[:200]
            else:
                rec.status = r.status_code
                if r.status_code == 201:
                    rec.id = str(r.json()["id"])
                else:
                    rec.error = r.text[:200]
            rec.done = loop.time() - t0

        tasks: list[asyncio.Task[None]] = []
        for i in range(total):
            due = i / args.rate
            delay = t0 + due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            kind = KINDS[i % len(KINDS)]
            rec = Sent(kind.name, due)
            records.append(rec)
            tasks.append(asyncio.create_task(one(rec, kind, i)))
        await asyncio.gather(*tasks)
    return t0_epoch, records


def offer(
    cfg: StackConfig, tokens: dict[str, str], args: argparse.Namespace
) -> tuple[float, list[Sent]]:
    try:
        import uvloop

        return uvloop.run(_offer(cfg, tokens, args))
    except ImportError:
        return asyncio.run(_offer(cfg, tokens, args))


# ----------------------------------------------------------------------- measurement


def cpu_groups(sup: Supervisor, cluster: LocalCluster) -> list[procstat.Group]:
    pm = cluster.postmaster_pid()
    assert pm is not None, "no postmaster.pid"
    pid = {name: p.pid for name, p in sup.procs.items()}
    workers = [p for n, p in pid.items() if re.fullmatch(r"worker[0-9]+", n)]
    return [
        procstat.Group("postgresql", [pm]),
        procstat.Group("api", [pid[n] for n in ("api", "receiver") if n in pid]),
        procstat.Group("workers", workers),
        procstat.Group("postgrest", [pid["postgrest"]]),
        *(procstat.Group(k.sim, [pid[k.sim]], harness=True) for k in KINDS),
        procstat.Group("bench", [os.getpid()], harness=True, roots_only=True),
    ]


def db_rows(conn: psycopg.Connection[Any], sent: list[Sent]) -> list[dict[str, Any]]:
    """Per accepted message: its kind, status, provider, attempts and the times from
    acceptance (seconds) to the first claim, the hand-off and the end."""
    conn.execute("CREATE TEMP TABLE bench_seen (id uuid PRIMARY KEY, kind text NOT NULL)")
    with conn.cursor() as cur, cur.copy("COPY bench_seen (id, kind) FROM STDIN") as copy:
        for s in sent:
            if s.id is not None:
                copy.write_row((s.id, s.kind))
    conn.execute("ANALYZE bench_seen")
    rows = conn.execute(
        "SELECT s.id::text, s.kind, m.id IS NOT NULL, m.channel, m.status,"
        "       m.completed_at IS NOT NULL, a.provider, a.n,"
        "       extract(epoch FROM a.claimed_at - m.created_at)::float8,"
        "       extract(epoch FROM a.handed_off_at - m.created_at)::float8,"
        "       extract(epoch FROM m.completed_at - m.created_at)::float8, m.error_code"
        "  FROM bench_seen s"
        "  LEFT JOIN app.messages m ON m.id = s.id"
        "  LEFT JOIN LATERAL ("
        "    SELECT (array_agg(x.provider ORDER BY x.attempt_no))[1] AS provider,"
        "           min(x.claimed_at) AS claimed_at, min(x.handed_off_at) AS handed_off_at,"
        "           count(*) AS n"
        "      FROM app.message_attempts x"
        "     WHERE x.message_id = m.id AND x.message_created_at = m.created_at) a ON true"
    ).fetchall()
    keys = (
        "id",
        "kind",
        "exists",
        "channel",
        "status",
        "completed",
        "provider",
        "attempts",
        "claimed_s",
        "handed_off_s",
        "final_s",
        "error_code",
    )
    return [dict(zip(keys, r, strict=True)) for r in rows]


def sim_stats(cfg: StackConfig) -> dict[str, dict[str, Any]]:
    """Each simulator's /_sim/stats (Vonage's over TLS, trusting its own CA)."""
    urls = {
        "twilio": cfg.sim_url,
        "ses": cfg.ses_url,
        "fcm": cfg.fcm_url,
        "whatsapp": cfg.whatsapp_url,
        "vonage": cfg.vonage_url,
    }
    ca = ssl.create_default_context(cafile=str(cfg.vonage_ca_dir / "ca.pem"))
    out: dict[str, dict[str, Any]] = {}
    for provider, url in urls.items():
        verify: ssl.SSLContext | bool = ca if provider == "vonage" else True
        try:
            r = httpx.get(f"{url}/_sim/stats", verify=verify, timeout=60)
            r.raise_for_status()
            out[provider] = dict(r.json())
        except httpx.HTTPError as exc:
            out[provider] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


def loss_check(
    conn: psycopg.Connection[Any],
    rows: list[dict[str, Any]],
    sent: list[Sent],
    t0_epoch: float,
    stats: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """Every accepted message exists, ended in exactly one terminal state, on the
    channel and provider of its kind; every send a provider took is a hand-off."""
    per_kind: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        mine = [r for r in rows if r["kind"] == kind.name]
        per_kind[kind.name] = {
            "accepted_ids": len(mine),
            "missing": sum(1 for r in mine if not r["exists"]),
            "not_terminal": sum(1 for r in mine if r["exists"] and not r["completed"]),
            "bad_terminal": sum(1 for r in mine if r["completed"] and r["status"] not in TERMINAL),
            "wrong_route": sum(
                1
                for r in mine
                if r["exists"] and (r["channel"] != kind.channel or r["provider"] != kind.provider)
            ),
            "more_than_one_attempt": sum(1 for r in mine if (r["attempts"] or 0) > 1),
            "statuses": dict(sorted(Counter(str(r["status"]) for r in mine).items())),
        }
    ids = [s.id for s in sent if s.id is not None]
    extra = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE m.completed_at IS NULL) FROM app.messages m"
        " WHERE m.created_at >= to_timestamp(%s)"
        "   AND NOT EXISTS (SELECT 1 FROM bench_seen s WHERE s.id = m.id)",
        (t0_epoch,),
    ).fetchone()
    assert extra is not None
    handoffs = dict(
        conn.execute(
            "SELECT provider, count(*) FROM app.message_attempts"
            " WHERE provider_message_id IS NOT NULL GROUP BY 1"
        ).fetchall()
    )
    dup = conn.execute(
        "SELECT count(*) FROM app.message_events"
        " WHERE event_type = 'handed_off' AND error_code = 'duplicate_handoff'"
    ).fetchone()
    duplicate_handoffs = int(dup[0]) if dup else 0
    ledger: dict[str, dict[str, Any]] = {}
    for provider, key in SIM_ACCEPTED.items():
        s = stats.get(provider, {})
        ledger[provider] = {
            "sends_accepted": s.get(key),
            "handoffs_recorded": int(handoffs.get(provider, 0)),
            "callbacks_failed": s.get(SIM_CALLBACK_FAILED.get(provider, ""), 0),
        }
        if provider == "twilio":
            ledger[provider]["duplicate_callback_urls"] = s.get("duplicate_callback_urls")
    all_terminal = all(k["not_terminal"] == 0 for k in per_kind.values()) and extra[1] == 0
    ledger_ok = all(v["sends_accepted"] == v["handoffs_recorded"] for v in ledger.values())
    no_loss = (
        all(k["missing"] == 0 and k["bad_terminal"] == 0 for k in per_kind.values())
        and len(ids) == len(set(ids))
        and duplicate_handoffs == 0
        and not ledger["twilio"].get("duplicate_callback_urls")
        # A send not yet recorded as a hand-off only counts once everything is terminal.
        and (ledger_ok or not all_terminal)
    )
    return {
        "per_kind": per_kind,
        "accepted_ids": len(ids),
        "duplicate_ids_from_client": len(ids) - len(set(ids)),
        "unacknowledged_in_db": int(extra[0]),
        "unacknowledged_not_terminal": int(extra[1]),
        "duplicate_handoff_events": duplicate_handoffs,
        "providers": ledger,
        "providers_match_handoffs": ledger_ok,
        "wrong_route": sum(k["wrong_route"] for k in per_kind.values()),
        "all_terminal": all_terminal,
        "no_loss": no_loss,
        "ok": no_loss and all_terminal,
    }


def kind_figures(kind: str | None, rows: list[dict[str, Any]], sent: list[Sent]) -> dict[str, Any]:
    """The figures of one kind (None: of all)."""
    mine = [r for r in rows if kind is None or r["kind"] == kind]
    mine_sent = [s for s in sent if kind is None or s.kind == kind]
    accepted = [s for s in mine_sent if s.status == 201]
    delivered = [r for r in mine if r["status"] == "delivered" and r["final_s"] is not None]
    return {
        "offered": len(mine_sent),
        "accepted": len(accepted),
        "delivered": len(delivered),
        "statuses": dict(sorted(Counter(str(r["status"]) for r in mine).items())),
        "http_statuses": dict(sorted(Counter(str(s.status) for s in mine_sent).items())),
        "accept_ms": lat_summary([s.done - s.sched for s in accepted]),
        "accept_to_claimed_ms": lat_summary(
            [r["claimed_s"] for r in mine if r["claimed_s"] is not None]
        ),
        "accept_to_handed_off_ms": lat_summary(
            [r["handed_off_s"] for r in mine if r["handed_off_s"] is not None]
        ),
        "accept_to_delivered_ms": lat_summary([r["final_s"] for r in delivered]),
    }


LOG_ISSUE = re.compile(r"\b(ERROR|WARNING|CRITICAL|Traceback|Exception)\b")


def log_issues(path: Path, limit: int = 8) -> dict[str, Any]:
    """Warning and error lines of the stack log, counted by service, the first few kept."""
    by_service: Counter[str] = Counter()
    first: list[str] = []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return {"by_service": {}, "first": []}
    for line in text.splitlines():
        if LOG_ISSUE.search(line):
            by_service[line.split("|", 1)[0].strip()] += 1
            if len(first) < limit:
                first.append(line[:300])
    return {"by_service": dict(by_service.most_common()), "first": first}


# ------------------------------------------------------------------------------- run


def run(args: argparse.Namespace) -> dict[str, Any]:
    cluster = start_cluster()
    log_path = STATE / "bench-channels-stack.log"
    sup = Supervisor(log=log_path.open("w"))
    result: dict[str, Any] = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "name": args.name,
        "quick": args.quick,
        "machine": {
            "cpus": cpu_count(),
            "memory_gib": round(memory_bytes() / 1024**3, 1),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "config": {
            "rate": args.rate,
            "duration_s": args.duration,
            "drain_s": args.drain,
            "kinds": [k.name for k in KINDS],
            "workers": args.workers,
            "receipt_delay_ms": args.receipt_delay_ms,
            "simulator_latency_ms": 0,
            "max_outstanding": args.max_outstanding,
            "timeout_s": args.timeout,
        },
        "stack_log": str(log_path),
    }
    try:
        result["settings"] = read_settings(cluster.dsn())
        cluster.ensure_database("bench")
        owner = cluster.dsn("bench")
        migrate(owner)
        cfg = stack_config(cluster, args)
        result["config"]["api_processes"] = cfg.api_processes
        for spec in stack_specs(cfg):
            sup.start(spec)
        tokens = create_tenants(cfg, owner)
        result["warm_up_messages"] = warm_up(cfg, owner, tokens)
        with psycopg.connect(owner, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            conn.execute("CHECKPOINT")
        groups = cpu_groups(sup, cluster)
        print(
            f"channels: {args.rate:g} msg/s over {len(KINDS)} kinds for {args.duration:g} s"
            f" ({args.workers} worker(s), {cfg.api_processes} API process(es))"
        )
        before = procstat.take(groups)
        t0_epoch, sent = offer(cfg, tokens, args)
        load_s = time.time() - t0_epoch
        print(f"channels: load done after {load_s:.1f} s; draining (up to {args.drain:g} s)")
        drained = wait_terminal(owner, args.drain)
        after = procstat.take(groups)
        drain_s = time.time() - t0_epoch - load_s
        stats = sim_stats(cfg)
        with psycopg.connect(owner, autocommit=True) as conn:
            rows = db_rows(conn, sent)
            loss = loss_check(conn, rows, sent, t0_epoch, stats)
        cpu = procstat.delta(before.cpu, after.cpu)
        hermes = sum(cpu[g] for g in ("postgresql", "api", "workers", "postgrest"))
        busy = cpu["machine_busy_s"]
        result["load_s"] = round(load_s, 2)
        result["drain_s"] = round(drain_s, 2)
        result["drained"] = drained
        result["services_died"] = sup.failed()
        result["errors"] = [s.error for s in sent if s.error][:5]
        result["kinds"] = {k.name: kind_figures(k.name, rows, sent) for k in KINDS}
        result["all"] = kind_figures(None, rows, sent)
        result["loss_check"] = loss
        result["simulator_stats"] = stats
        result["cpu_s"] = cpu
        result["hermes_cpu_s"] = round(hermes, 3)
        result["machine_busy_pct"] = (
            round(100 * busy / cpu["machine_total_s"], 1) if cpu["machine_total_s"] else None
        )
        result["other_processes"] = procstat.others(before, after)
    finally:
        sup.stop()
        cluster.stop()
    result["log_issues"] = log_issues(log_path)
    return result


# ---------------------------------------------------------------------------- output


def _cell(d: dict[str, float] | None) -> str:
    if not d:
        return "-"
    return f"{d['p50']:.1f} / {d['p99']:.1f} / {d['max']:.1f}"


def summary_text(result: dict[str, Any]) -> str:
    lines: list[str] = []
    add = lines.append
    cfg = result["config"]
    add(
        f"== Hermes per channel: {cfg['rate']:g} msg/s offered for {cfg['duration_s']:g} s,"
        f" round-robin over {len(cfg['kinds'])} kinds; simulators at 0 ms latency,"
        f" {cfg['receipt_delay_ms']} ms receipt delay; {cfg['workers']} worker(s),"
        f" {cfg['api_processes']} API process(es), {result['machine']['cpus']} cores"
    )
    head = (
        f"{'kind':<15} {'acc':>5} {'deliv':>5}  {'accept (client)':>22}"
        f"  {'accept->claimed':>22}  {'accept->handed off':>22}  {'accept->delivered':>22}"
    )
    add("latencies in ms, p50 / p99 / max")
    add(head)
    add("-" * len(head))
    for name in (*cfg["kinds"], "all"):
        k = result["all"] if name == "all" else result["kinds"][name]
        if name == "all":
            add("-" * len(head))
        add(
            f"{name:<15} {k['accepted']:>5} {k['delivered']:>5}  {_cell(k['accept_ms']):>22}"
            f"  {_cell(k['accept_to_claimed_ms']):>22}"
            f"  {_cell(k['accept_to_handed_off_ms']):>22}"
            f"  {_cell(k['accept_to_delivered_ms']):>22}"
        )
    per_kind = min(result["kinds"][n]["accepted"] for n in cfg["kinds"])
    if 0 < per_kind < 1000:
        rank = per_kind - int(0.99 * per_kind)
        add(
            f"({per_kind} messages a kind: p99 is the value ranked {rank} from the top"
            f"{' (the max)' if rank == 1 else ''}; --duration or --rate for more)"
        )
    add(
        f"load {result['load_s']} s, drained: {result['drained']} after {result['drain_s']} s"
        f" more; HTTP statuses {result['all']['http_statuses']}"
    )
    loss = result["loss_check"]
    verdict = "OK" if loss["ok"] else ("no loss, NOT ALL TERMINAL" if loss["no_loss"] else "FAILED")
    add(
        f"loss check: {verdict}: {loss['accepted_ids']} accepted ids; unacknowledged in DB"
        f" {loss['unacknowledged_in_db']}; duplicate hand-offs {loss['duplicate_handoff_events']};"
        f" on another channel/provider than their kind's {loss['wrong_route']}"
    )
    for name, k in loss["per_kind"].items():
        add(
            f"  {name:<15} missing {k['missing']}, not terminal {k['not_terminal']},"
            f" wrong route {k['wrong_route']}, >1 attempt {k['more_than_one_attempt']},"
            f" statuses {k['statuses']}"
        )
    add(
        "  provider ledgers (sends accepted vs hand-offs recorded, callbacks failed): "
        + ", ".join(
            f"{p} {v['sends_accepted']}/{v['handoffs_recorded']} ({v['callbacks_failed']})"
            for p, v in loss["providers"].items()
        )
    )
    cpu = result["cpu_s"]
    groups = [g for g in cpu if not g.startswith("machine_")]
    add(
        "CPU s (load + drain): "
        + ", ".join(f"{g} {cpu[g]:.2f}" for g in groups)
        + f"; machine busy {result['machine_busy_pct']} %"
    )
    if result["other_processes"]:
        add(
            "  other processes: "
            + ", ".join(
                f"{o['comm']}[{o['pid']}] {o['cpu_s']} s" for o in result["other_processes"]
            )
        )
    if result["services_died"]:
        add(f"!! services died during the run: {result['services_died']}")
    if result["errors"]:
        add(f"first errors: {result['errors']}")
    issues = result["log_issues"]
    if issues["by_service"]:
        add(f"stack log ({result['stack_log']}): warnings/errors by service {issues['by_service']}")
        for line in issues["first"]:
            add(f"  {line}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result = run(args)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"{args.name}.jsonl"
    with out.open("a") as f:
        f.write(json.dumps(result) + "\n")
    print(summary_text(result))
    print(f"-> {out}")
    if not result["loss_check"]["no_loss"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
