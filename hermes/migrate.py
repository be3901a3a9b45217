"""Bring a database to the current schema: versioned migrations, then repeatables.

1. yoyo-migrations applies the pending files of ``db/migrations`` (one change per
   file, each with a ``.rollback.sql``; ``db/migrations/sqitch.plan`` lists them).
2. The repeatable files -- ``db/functions`` then ``db/views`` (CREATE OR REPLACE) --
   are applied in one transaction, in path order, each only when its sha256 differs
   from the one recorded in ``private.repeatable_applied`` (like Flyway's R__ files).
3. ``private.configure_database()`` revokes TEMP from PUBLIC and writes PostgREST's
   in-database configuration,
   ``private.ensure_partitions()`` creates the months ahead, and
   ``NOTIFY pgrst`` reloads PostgREST's config and schema cache. This runs every
   time: yoyo's own post-apply hook runs only when a migration was pending.
4. With ``HERMES_CREDENTIALS_KEYS`` in the environment, the tenant provider accounts
   stored before their webhook secrets were sealed apart get theirs
   (:func:`reseal_webhook_secrets`: SQL cannot open sealed credentials).

Run it as the database owner (a superuser in development):
``python -m hermes.migrate postgresql://...``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from yoyo import get_backend, read_migrations

from hermes.accounts import sealed_webhook_secret
from hermes.credentials import CredentialsError, Sealer

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = ROOT / "db" / "migrations"
REPEATABLE_DIRS = (ROOT / "db" / "functions", ROOT / "db" / "views")


@dataclass(frozen=True)
class MigrateResult:
    migrations_applied: list[str]
    repeatables_applied: list[str]


def _yoyo_uri(dsn: str) -> str:
    """yoyo names the psycopg 3 driver in the URI scheme."""
    for scheme in ("postgresql://", "postgres://"):
        if dsn.startswith(scheme):
            return "postgresql+psycopg://" + dsn[len(scheme) :]
    return dsn


def repeatable_files() -> list[Path]:
    files: list[Path] = []
    for directory in REPEATABLE_DIRS:
        files.extend(sorted(directory.rglob("*.sql")))
    return files


def apply_migrations(dsn: str) -> list[str]:
    backend = get_backend(_yoyo_uri(dsn))
    migrations = read_migrations(str(MIGRATIONS))
    try:
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
    finally:
        backend.connection.close()
    return [m.id for m in pending]


def apply_repeatables(conn: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    applied: list[str] = []
    with conn.transaction():
        conn.execute("LOCK TABLE private.repeatable_applied IN EXCLUSIVE MODE")
        # Bodies refer to each other and to later files; they are checked when run.
        conn.execute("SET LOCAL check_function_bodies = off")
        rows = conn.execute("SELECT path, sha256 FROM private.repeatable_applied").fetchall()
        known = {str(path): str(digest) for path, digest in rows}
        for path in repeatable_files():
            name = str(path.relative_to(ROOT))
            text = path.read_text(encoding="utf-8")
            digest = hashlib.sha256(text.encode()).hexdigest()
            if known.get(name) == digest:
                continue
            conn.execute(text.encode())
            conn.execute(
                "INSERT INTO private.repeatable_applied (path, sha256) VALUES (%s, %s) "
                "ON CONFLICT (path) DO UPDATE SET sha256 = excluded.sha256, applied_at = now()",
                (name, digest),
            )
            applied.append(name)
    return applied


def configure(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Per-database settings that are not schema: PostgREST config, partitions."""
    with conn.transaction():
        conn.execute("SELECT private.configure_database()")
        conn.execute("SELECT private.ensure_partitions(3)")
        # Last: what the migrations, the repeatable files and the partitions above
        # created belongs to hermes_owner (NOSUPERUSER BYPASSRLS), as whom the
        # SECURITY DEFINER commands then run.
        conn.execute("SELECT private.assign_owner()")
    conn.execute("NOTIFY pgrst, 'reload config'")
    conn.execute("NOTIFY pgrst, 'reload schema'")


# The login roles and the variable each one's password is read from.
PASSWORD_VARS = {
    "hermes_api": "HERMES_API_PASSWORD",
    "hermes_worker": "HERMES_WORKER_PASSWORD",
    "hermes_authenticator": "HERMES_AUTHENTICATOR_PASSWORD",
}


def set_passwords_from_env(conn: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    """ALTER ROLE ... PASSWORD from HERMES_API_PASSWORD, HERMES_WORKER_PASSWORD,
    HERMES_AUTHENTICATOR_PASSWORD, for the roles whose variable is set."""
    changed = []
    for role, var in PASSWORD_VARS.items():
        password = os.environ.get(var)
        if password:
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(password)
                )
            )
            changed.append(role)
    return changed


def reseal_webhook_secrets(conn: psycopg.Connection[tuple[object, ...]], sealer: Sealer) -> int:
    """Seals apart the webhook-verification secret of every tenant provider account that
    has none (accounts stored before migration 0026): SQL cannot open the sealed
    credentials, so this is done here, with the deployment's keys. An account whose
    credentials do not open with them is left (a worker that can open it fills it the
    first time it does: hermes/accounts.py). Returns how many were filled."""
    rows = conn.execute(
        "SELECT id::text, provider, key_id, credentials FROM app.provider_accounts "
        "WHERE webhook_secret IS NULL ORDER BY id"
    ).fetchall()
    secrets = []
    for account_id, provider, key_id, blob in rows:
        assert isinstance(blob, bytes)
        try:
            credentials = sealer.open(str(account_id), str(provider), str(key_id), blob)
        except CredentialsError as exc:
            sys.stderr.write(f"provider account {account_id}: not resealed ({exc})\n")
            continue
        secrets.append(sealed_webhook_secret(sealer, str(account_id), str(provider), credentials))
    if not secrets:
        return 0
    row = conn.execute("SELECT app.fill_webhook_secrets(%s)", (Jsonb(secrets),)).fetchone()
    return int(row[0]) if row else 0  # type: ignore[call-overload]


def migrate(dsn: str) -> MigrateResult:
    migrations = apply_migrations(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        repeatables = apply_repeatables(conn)
        configure(conn)
        # With the deployment's keys in the environment: what SQL cannot do itself.
        sealer = Sealer.from_env()
        if sealer is not None:
            reseal_webhook_secrets(conn, sealer)
    return MigrateResult(migrations, repeatables)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("dsn", help="PostgreSQL URI of the database owner")
    parser.add_argument(
        "--set-passwords-from-env",
        action="store_true",
        help="set the login roles' passwords from HERMES_{API,WORKER,AUTHENTICATOR}_PASSWORD",
    )
    args = parser.parse_args(argv)
    result = migrate(args.dsn)
    if args.set_passwords_from_env:
        with psycopg.connect(args.dsn, autocommit=True) as conn:
            changed = set_passwords_from_env(conn)
        sys.stdout.write(f"passwords set for: {', '.join(changed) or 'none'}\n")
    sys.stdout.write(
        f"migrations applied: {len(result.migrations_applied)}; "
        f"repeatable files applied: {len(result.repeatables_applied)}\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
