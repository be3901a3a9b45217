"""Named fault-injection points for crash tests (FreeBSD/TiKV-style failpoints).

``HERMES_FAILPOINTS="after_claim=sleep:30,after_provider_call=sleep:30"`` makes the
worker pause at those points so a test can ``kill -9`` it there. Unset (production),
every failpoint is a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import os

log = logging.getLogger("hermes.worker.failpoints")


def _parse(spec: str) -> dict[str, float]:
    points: dict[str, float] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, _, action = item.partition("=")
        kind, _, arg = action.partition(":")
        if kind != "sleep":
            raise ValueError(f"unknown failpoint action {action!r} (only sleep:SECONDS)")
        points[name.strip()] = float(arg)
    return points


_POINTS = _parse(os.environ.get("HERMES_FAILPOINTS", ""))


async def failpoint(name: str) -> None:
    seconds = _POINTS.get(name)
    if seconds:
        log.warning("failpoint %s: sleeping %.1fs", name, seconds)
        await asyncio.sleep(seconds)
