"""Migrations: idempotent, reversible, and a fresh database equals a migrated one."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import psycopg
from yoyo import get_backend, read_migrations

from hermes import pgqueuer_sql
from hermes.migrate import MIGRATIONS, _yoyo_uri, migrate
from tests.conftest import Cluster

ROOT = Path(__file__).resolve().parent.parent


def _create(cluster: Cluster, name: str) -> str:
    with psycopg.connect(cluster.dsn("postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return cluster.dsn(name)


def _schema_dump(cluster: Cluster, dbname: str) -> str:
    """A normalised schema-only dump: the state the migrations produce."""
    out = subprocess.run(
        [
            "pg_dump",
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            "-h",
            cluster.host,
            "-p",
            str(cluster.port),
            "-U",
            cluster.user,
            dbname,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    out = re.sub(r"^--.*$", "", out, flags=re.M)
    out = re.sub(r"^\\(un)?restrict .*$", "", out, flags=re.M)  # pg_dump's random guard key
    out = re.sub(r"(_p)\d{4}_\d{2}", r"\1YYYY_MM", out)
    return "\n".join(line for line in out.splitlines() if line.strip())


def _dump_with_data_that_matters(
    cluster: Cluster, dbname: str
) -> tuple[str, list[tuple[object, ...]]]:
    with psycopg.connect(cluster.dsn(dbname)) as conn:
        repeatables = conn.execute(
            "SELECT path, sha256 FROM private.repeatable_applied ORDER BY path"
        ).fetchall()
    return _schema_dump(cluster, dbname), repeatables


def test_migrating_twice_is_a_no_op(cluster: Cluster) -> None:
    dsn = _create(cluster, "mig_twice")
    first = migrate(dsn)
    assert len(first.migrations_applied) == len(list(MIGRATIONS.glob("0*[0-9a-z].sql"))) - len(
        list(MIGRATIONS.glob("*.rollback.sql"))
    )
    assert first.repeatables_applied
    before = _dump_with_data_that_matters(cluster, "mig_twice")
    second = migrate(dsn)
    assert second.migrations_applied == []
    assert second.repeatables_applied == []
    assert _dump_with_data_that_matters(cluster, "mig_twice") == before


def test_fresh_database_equals_one_migrated_step_by_step(cluster: Cluster) -> None:
    """Apply migrations one at a time (as successive deploys would) vs. all at once."""
    fresh = _create(cluster, "mig_fresh")
    migrate(fresh)
    stepwise = _create(cluster, "mig_steps")
    backend = get_backend(_yoyo_uri(stepwise))
    try:
        migrations = read_migrations(str(MIGRATIONS))
        for m in migrations:
            with backend.lock():
                backend.apply_migrations(backend.to_apply(migrations.__class__([m])))
    finally:
        backend.connection.close()
    migrate(stepwise)
    assert _schema_dump(cluster, "mig_steps") == _schema_dump(cluster, "mig_fresh")


def test_up_down_up(cluster: Cluster) -> None:
    dsn = _create(cluster, "mig_updown")
    migrate(dsn)
    once = _schema_dump(cluster, "mig_updown")
    backend = get_backend(_yoyo_uri(dsn))
    try:
        migrations = read_migrations(str(MIGRATIONS))
        with backend.lock():
            backend.rollback_migrations(backend.to_rollback(migrations))
    finally:
        backend.connection.close()
    with psycopg.connect(dsn) as conn:
        left = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname IN ('app', 'private', 'api', 'pgqueuer')"
        ).fetchall()
    assert left == []
    migrate(dsn)
    assert _schema_dump(cluster, "mig_updown") == once


def test_every_migration_has_a_rollback_and_a_plan_entry() -> None:
    deploys = sorted(p for p in MIGRATIONS.glob("*.sql") if not p.name.endswith(".rollback.sql"))
    plan = (MIGRATIONS / "sqitch.plan").read_text()
    planned = [line.split()[0] for line in plan.splitlines() if line and line[0].isdigit()]
    assert planned == [p.stem for p in deploys]
    for p in deploys:
        assert (MIGRATIONS / f"{p.stem}.rollback.sql").exists(), p.name


def test_pgqueuer_migration_matches_the_pinned_version() -> None:
    assert (MIGRATIONS / "0002.pgqueuer.sql").read_text() == pgqueuer_sql.render()
