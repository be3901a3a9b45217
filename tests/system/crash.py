"""What the kill -9 tests share: workers started with failpoints (workers/failpoints.py),
waiting for a state, and a worker's own lines of the stack's log."""

from __future__ import annotations

import time
from collections.abc import Callable

from hermes.services import worker_spec
from tests.system.conftest import Stack


def crash_worker_env(provider_timeout_s: int) -> dict[str, str]:
    """Workers that notice a dead one fast: its jobs are re-picked after a 1 s heartbeat
    timeout, polled every 0.2 s; the provider timeout must fit the test's claim lease
    (app.check_worker_settings refuses a worker whose calls could outlast half of it)."""
    return {
        "HERMES_JOB_HEARTBEAT_TIMEOUT": "1",
        "HERMES_JOB_POLL_INTERVAL": "0.2",
        "HERMES_PROVIDER_TIMEOUT": str(provider_timeout_s),
    }


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def worker_log(stack: Stack, worker: str) -> list[str]:
    """The worker's lines of stack.log (``name | ...``)."""
    return [
        line
        for line in stack.log_path.read_text().splitlines()
        if line.partition("|")[0].strip() == worker
    ]


def start_worker(stack: Stack, name: str, failpoints: str = "") -> None:
    """Starts a worker and waits until it runs: one that exits at start-up (a refused
    setting, a broken import) fails here with its log, not as a message stuck later."""
    spec = worker_spec(stack.cfg)
    spec.name = name
    if failpoints:
        spec.env = spec.env | {"HERMES_FAILPOINTS": failpoints}
    proc = stack.sup.start(spec)
    deadline = time.monotonic() + 30
    while not any("worker started" in line for line in worker_log(stack, name)):
        if proc.poll() is not None or time.monotonic() > deadline:
            stack.sup.procs.pop(name, None)
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            log = "\n".join(worker_log(stack, name)[-30:])
            raise AssertionError(f"worker {name} did not start (exit {proc.poll()}):\n{log}")
        time.sleep(0.05)


def sleeping_at(stack: Stack, worker: str, point: str) -> bool:
    """The worker logged that it sleeps at the failpoint (stack.log: ``name | ...``)."""
    return any(f"failpoint {point}: sleeping" in line for line in worker_log(stack, worker))


def kill_stray_workers(stack: Stack) -> None:
    """A test that failed before its kill leaves no worker paused at a failpoint (it
    would take the next test's jobs)."""
    for name in [n for n in stack.sup.procs if n.startswith(("doomed-", "survivor-"))]:
        stack.sup.kill(name)
