"""A worker whose provider timeout the claim lease does not cover refuses to start
(app.check_worker_settings): a provider call outliving the lease would let another
worker re-claim -- reconcile or resend -- an attempt whose first call is in flight."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import Cluster


def _worker(cluster: Cluster, db: str, timeout: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "HERMES_WORKER_DATABASE_URL": cluster.dsn(db, "hermes_worker"),
        "HERMES_PUBLIC_URL": "http://127.0.0.1:9",
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": "token",
        "TWILIO_API_BASE_URL": "http://127.0.0.1:9",
        "HERMES_PROVIDER_TIMEOUT": timeout,
    }
    return subprocess.run(
        [sys.executable, "-m", "workers"], env=env, capture_output=True, text=True, timeout=60
    )


def test_a_provider_timeout_longer_than_the_lease_stops_the_worker(
    cluster: Cluster, db: str
) -> None:
    r = _worker(cluster, db, "120")
    assert r.returncode == 2, r.stderr[-2000:]
    assert "provider_timeout_exceeds_lease" in r.stderr
    assert "HERMES_PROVIDER_TIMEOUT to at most 30 seconds" in r.stderr
    assert "Traceback" not in r.stderr
