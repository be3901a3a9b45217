"""Races between sessions: each call in its own connection and thread, released
together by a barrier (the pgmq isolation-spec idea, with psycopg)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg


def race_timed(
    dsn: str, n: int, call: Callable[[psycopg.Connection[Any], int], Any]
) -> list[tuple[Any, float]]:
    """Runs call(conn, i) in n sessions released together; each result with the seconds
    its call took. The first exception of any session is raised."""
    barrier = threading.Barrier(n)
    results: list[tuple[Any, float]] = [(None, 0.0)] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                barrier.wait(timeout=10)
                start = time.monotonic()
                result = call(conn, i)
                results[i] = (result, time.monotonic() - start)
        except BaseException as exc:  # collected and re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    if errors:
        raise errors[0]
    return results


def race(dsn: str, n: int, call: Callable[[psycopg.Connection[Any], int], Any]) -> list[Any]:
    """race_timed without the timings."""
    return [result for result, _ in race_timed(dsn, n, call)]
