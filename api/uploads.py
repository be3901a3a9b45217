"""Upload slots: the uploads (an import's LAND, a suppression list's CSV) are bounded
apart from everything else.

An upload holds its slot from its first byte to its answer, however slowly the client
sends it; LAND also holds a database connection for the whole COPY -- taken from a
small pool of its own (one connection a slot), never from the pool that sends and the
other commands use, so uploads can never take the connections those need. When every
slot is busy, an upload is answered at once 429 ``uploads_busy`` with ``Retry-After``:
nothing was read or done, the client sends it again later. Per API process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from psycopg_pool import AsyncConnectionPool

from api.errors import Problem


class Uploads:
    def __init__(self, pool: AsyncConnectionPool, slots: int, retry_after: int) -> None:
        self.pool = pool
        self.slots = slots
        self.retry_after = retry_after
        self.busy = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """A slot for the duration of the block, or 429 uploads_busy at once."""
        # One event loop: nothing runs between the check and the increment.
        if self.busy >= self.slots:
            raise Problem(
                429,
                "uploads_busy",
                f"Every upload slot is busy ({self.slots} uploads at a time); nothing was done.",
                f"Send the upload again in {self.retry_after} seconds.",
                retry_after=self.retry_after,
            )
        self.busy += 1
        try:
            yield
        finally:
            self.busy -= 1
