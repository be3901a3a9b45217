"""End-to-end fixtures: real processes (PostgREST, uvicorn, workers, the Twilio
simulator) against a fresh database of the session's PostgreSQL cluster."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from hermes.services import WHATSAPP_NUMBER, StackConfig, Supervisor, free_port, stack_specs
from tests.conftest import TEST_POLICY, Cluster


@dataclass
class Stack:
    cfg: StackConfig
    sup: Supervisor
    owner_dsn: str
    admin_key: str
    log_path: Path

    def api(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.cfg.api_url, headers=headers, timeout=10)

    def rest(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.cfg.postgrest_url, headers=headers, timeout=10)

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with psycopg.connect(self.owner_dsn, autocommit=True, row_factory=dict_row) as conn:
            cur = conn.execute(query.encode(), params)
            return cur.fetchall() if cur.description else []

    def new_tenant(
        self, name: str = "Acme", whatsapp_from: str = WHATSAPP_NUMBER
    ) -> dict[str, Any]:
        with self.api(self.admin_key) as c:
            r = c.post(
                "/v1/tenants",
                json={
                    "name": name,
                    "default_sms_from": "+15005550006",
                    "default_email_from": "Hermes Tests <tests@hermes.example>",
                    "default_whatsapp_from": whatsapp_from,
                },
            )
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        # Transactional by default and no content dedup: the send-path tests must not
        # depend on the hour they run at, nor on their bodies being unique. The
        # compliance tests set the policy they test.
        self.sql(
            "SELECT private.set_tenant_policy(%s, NULL, %s)",
            (body["tenant"]["id"], Jsonb(TEST_POLICY)),
        )
        return body

    def carrier_ledger(self) -> list[dict[str, Any]]:
        ledger: list[dict[str, Any]] = httpx.get(f"{self.cfg.sim_url}/_sim/messages").json()
        return ledger

    def wait_message(
        self, token: str, message_id: str, statuses: set[str], timeout: float = 20.0
    ) -> dict[str, Any]:
        """Polls the read API (PostgREST) until the message reaches one of statuses."""
        deadline = time.monotonic() + timeout
        last: list[dict[str, Any]] = []
        with self.rest(token) as c:
            while time.monotonic() < deadline:
                r = c.get("/messages", params={"id": f"eq.{message_id}"})
                assert r.status_code == 200, r.text
                last = r.json()
                if last and last[0]["status"] in statuses:
                    return last[0]
                time.sleep(0.1)
        raise AssertionError(f"message {message_id} not in {statuses} after {timeout}s: {last}")


def start_stack(
    cluster: Cluster,
    make_db: Callable[[], str],
    tmp_path: Path,
    *,
    workers: int = 1,
    worker_env: dict[str, str] | None = None,
    sim_env: dict[str, str] | None = None,
    import_workers: int = 0,
    import_env: dict[str, str] | None = None,
    ses: bool = False,
    ses_env: dict[str, str] | None = None,
    fcm: bool = False,
    fcm_env: dict[str, str] | None = None,
    whatsapp: bool = False,
    whatsapp_env: dict[str, str] | None = None,
    vonage: bool = False,
    vonage_env: dict[str, str] | None = None,
    api_processes: int | None = None,
    api_env: dict[str, str] | None = None,
) -> Stack:
    db = make_db()
    cfg = StackConfig(
        db_host=cluster.host,
        db_port=cluster.port,
        db_name=db,
        api_port=free_port(),
        postgrest_port=free_port(),
        sim_port=free_port(),
        run_dir=tmp_path,
        workers=workers,
        worker_env={
            "HERMES_JOB_HEARTBEAT_TIMEOUT": "2",
            "HERMES_JOB_POLL_INTERVAL": "0.5",
            "HERMES_PROVIDER_TIMEOUT": "5",
        }
        | (worker_env or {}),
        sim_env={"SIM_TWILIO_RECEIPT_DELAY_MS": "50"} | (sim_env or {}),
        import_workers=import_workers,
        import_env={"HERMES_JOB_HEARTBEAT_TIMEOUT": "2", "HERMES_JOB_POLL_INTERVAL": "0.5"}
        | (import_env or {}),
        ses_port=free_port() if ses else None,
        ses_env={"SIM_SES_RECEIPT_DELAY_MS": "50"} | (ses_env or {}),
        fcm_port=free_port() if fcm else None,
        fcm_env=fcm_env or {},
        whatsapp_port=free_port() if whatsapp else None,
        whatsapp_env={"SIM_WHATSAPP_RECEIPT_DELAY_MS": "50"} | (whatsapp_env or {}),
        vonage_port=free_port() if vonage else None,
        vonage_env={"SIM_VONAGE_RECEIPT_DELAY_MS": "50"} | (vonage_env or {}),
        api_env=api_env or {},
    )
    if api_processes is not None:
        cfg.api_processes = api_processes
    log_path = tmp_path / "stack.log"
    sup = Supervisor(log=log_path.open("w"))
    owner = cluster.dsn(db)
    with psycopg.connect(owner, autocommit=True) as conn:
        row = conn.execute("SELECT app.create_admin_key('tests')->>'token'").fetchone()
    assert row is not None
    try:
        for spec in stack_specs(cfg):
            sup.start(spec)
    except BaseException:
        sup.stop()
        print(log_path.read_text())
        raise
    return Stack(cfg, sup, owner, str(row[0]), log_path)


def stop_stack(stack: Stack, request: pytest.FixtureRequest) -> None:
    stack.sup.stop()
    failed = getattr(request.module, "hermes_failed", False)
    if failed:
        print(f"----- stack log ({stack.log_path}) -----")
        print(stack.log_path.read_text()[-20000:])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed:
        item.module.hermes_failed = True  # type: ignore[attr-defined]


def module_stack(name: str, **options: Any) -> Any:
    """A module-scoped stack fixture: ``start_stack`` with these options (a run directory
    named ``name``), stopped -- its log shown if a test failed -- after the module.
    ``stack = module_stack("uploads", workers=0)`` in a test module."""

    @pytest.fixture(scope="module")
    def fixture(
        cluster: Cluster,
        make_db: Callable[[], str],
        tmp_path_factory: pytest.TempPathFactory,
        request: pytest.FixtureRequest,
    ) -> Iterator[Stack]:
        s = start_stack(cluster, make_db, tmp_path_factory.mktemp(name), **options)
        yield s
        stop_stack(s, request)

    return fixture


stack = module_stack("stack", workers=2)
