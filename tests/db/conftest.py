"""pgTAP runner: every ``tests/db/**/*.sql`` file is one pytest item.

Each file runs in a fresh database cloned from the migrated template (the ``make_db``
fixture of ``tests/conftest.py``), through ``psql`` with pgTAP's schema ``tap`` on the
search path. A file has the shape::

    BEGIN;
    SELECT plan(N);
    ... assertions ...
    SELECT * FROM finish();
    ROLLBACK;

The item fails, showing the whole TAP output, when psql exits non-zero (a SQL error:
ON_ERROR_STOP), when a line starts with ``not ok``, when pgTAP says ``# Looks like``
(wrong plan, failures) or when no ``ok`` line was produced at all.

Files may share helpers with ``\\ir`` (``tests/db/helpers.psql``: not a ``.sql`` file,
so not collected). ``pytest tests/db/functions/app/submit_message.sql`` runs one file.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import pytest

HERE = Path(__file__).resolve().parent


class _Cluster(Protocol):
    """The ``cluster`` fixture of tests/conftest.py."""

    def dsn(self, dbname: str, user: str | None = None) -> str: ...


PSQL_TIMEOUT_S = 120

_OK = re.compile(r"^ok\b")
_NOT_OK = re.compile(r"^not ok\b")


def run_pgtap_file(sql_file: Path, dsn: str) -> tuple[int, str]:
    """Runs one pgTAP file with psql; returns (exit code, stdout + stderr)."""
    psql = shutil.which("psql")
    if psql is None:
        pytest.fail("psql is not on PATH", pytrace=False)
    env = dict(os.environ)
    env["PGOPTIONS"] = "-c search_path=tap,public"
    env["PGCLIENTENCODING"] = "UTF8"
    env.pop("PGDATABASE", None)
    cmd = [
        psql,
        "-X",
        "--no-psqlrc",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        # What pg_prove passes: bare TAP lines, no headers, footers or pager.
        "--no-align",
        "--tuples-only",
        "--pset",
        "pager=off",
        "-d",
        dsn,
        "-f",
        str(sql_file),
    ]
    proc = subprocess.run(
        cmd,
        env=env,
        cwd=sql_file.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=PSQL_TIMEOUT_S,
        check=False,
    )
    return proc.returncode, proc.stdout


def tap_problems(returncode: int, output: str) -> list[str]:
    """Why a pgTAP run failed; empty when it passed."""
    lines = output.splitlines()
    problems: list[str] = []
    if returncode != 0:
        problems.append(f"psql exited with status {returncode}")
    failed = [line for line in lines if _NOT_OK.match(line)]
    if failed:
        problems.append(f"{len(failed)} assertion(s) failed")
    if "# Looks like" in output:
        problems.append("pgTAP: " + "; ".join(ln for ln in lines if "# Looks like" in ln))
    if not any(_OK.match(line) for line in lines):
        problems.append("no 'ok' line was produced")
    return problems


def _run_file(sql_file: Path, make_db: Callable[[], str], cluster: _Cluster) -> None:
    dbname = make_db()
    returncode, output = run_pgtap_file(sql_file, cluster.dsn(dbname))
    problems = tap_problems(returncode, output)
    if problems:
        pytest.fail(
            f"{sql_file.relative_to(HERE)}: "
            + "; ".join(problems)
            + "\n----- TAP output -----\n"
            + output,
            pytrace=False,
        )


class PgTapItem(pytest.Function):
    """A pytest.Function whose callable runs one .sql file, so that its fixtures
    (``make_db``, ``cluster``) are resolved by pytest's ordinary machinery."""

    sql_file: Path

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.sql_file, None, f"pgtap: {self.name}"


class PgTapFile(pytest.File):
    def collect(self) -> list[pytest.Item]:
        sql_file = self.path

        def test_pgtap_file(make_db: Callable[[], str], cluster: _Cluster) -> None:
            _run_file(sql_file, make_db, cluster)

        item = PgTapItem.from_parent(
            self, name=sql_file.relative_to(HERE).as_posix(), callobj=test_pgtap_file
        )
        item.sql_file = sql_file
        return [item]


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.suffix == ".sql" and HERE in file_path.resolve().parents:
        return PgTapFile.from_parent(parent, path=file_path)
    return None
