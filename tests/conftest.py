"""Shared fixtures: one throwaway PostgreSQL cluster per test session, started by
pytest-postgresql through ``scripts/pg_ctl`` (which also works as root), a template
database migrated once, and a fresh database cloned from it for each test that
asks for one (``CREATE DATABASE ... TEMPLATE``: milliseconds, not a re-migration).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from pytest_postgresql import factories

from hermes.migrate import migrate

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = "hermes_template"

postgresql_proc = factories.postgresql_proc(
    executable=str(ROOT / "scripts" / "pg_ctl"),
    host="127.0.0.1",
    user="postgres",
    postgres_options="-c max_connections=300 -c fsync=off -c synchronous_commit=off "
    "-c full_page_writes=off",
)


@dataclass(frozen=True)
class Cluster:
    host: str
    port: int
    user: str

    def dsn(self, dbname: str, user: str | None = None) -> str:
        return f"postgresql://{user or self.user}@{self.host}:{self.port}/{dbname}"


@pytest.fixture(scope="session")
def cluster(postgresql_proc: object) -> Cluster:
    proc = postgresql_proc
    return Cluster(host=proc.host, port=proc.port, user=proc.user)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def template_db(cluster: Cluster) -> str:
    """A database with every migration and repeatable applied, plus pgTAP."""
    with psycopg.connect(cluster.dsn("postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
        conn.execute(f"CREATE DATABASE {TEMPLATE}")
    migrate(cluster.dsn(TEMPLATE))
    with psycopg.connect(cluster.dsn(TEMPLATE), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS tap")
        conn.execute("CREATE EXTENSION IF NOT EXISTS pgtap SCHEMA tap")
    return TEMPLATE


_counter = itertools.count()


@pytest.fixture(scope="session")
def make_db(cluster: Cluster, template_db: str) -> Callable[[], str]:
    """Returns a function that clones the template into a new database (its name)."""

    def make() -> str:
        name = f"hermes_t{os.getpid()}_{next(_counter)}"
        with psycopg.connect(cluster.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {template_db}")
        # Database ACLs (no TEMP for PUBLIC) are not copied by CREATE DATABASE.
        with psycopg.connect(cluster.dsn(name), autocommit=True) as conn:
            conn.execute("SELECT private.configure_database()")
        return name

    return make


@pytest.fixture
def db(make_db: Callable[[], str]) -> str:
    """A fresh, fully migrated database for this test."""
    return make_db()


@pytest.fixture
def db_dsn(cluster: Cluster, db: str) -> str:
    return cluster.dsn(db)


@pytest.fixture
def conn(db_dsn: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(db_dsn, autocommit=True) as c:
        yield c


# The policy of the tests' tenants: transactional by default and no content dedup, so
# that a send-path test depends neither on the hour it runs at (quiet hours) nor on its
# bodies being unique. The compliance tests set the policy they test.
TEST_POLICY = {"default_category": "transactional", "content_dedup_seconds": 0}
