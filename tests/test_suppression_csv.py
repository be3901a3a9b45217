"""The suppression CSV (POST /v1/suppressions as multipart) read record by record and
counted while read (issue 19, the review), and the upload slots' refusal."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest

from api.errors import Problem
from api.routes.compliance import MAX_ENTRIES, csv_addresses
from api.uploads import Uploads


class _Counted(io.BytesIO):
    furthest = 0

    def readinto(self, b: Any) -> int:
        n = super().readinto(b)
        self.furthest = max(self.furthest, self.tell())
        return n

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.furthest = max(self.furthest, self.tell())
        return data

    def read1(self, size: int | None = -1) -> bytes:
        data = super().read1(size)
        self.furthest = max(self.furthest, self.tell())
        return data


def test_the_addresses_column_blank_rows_and_a_bom() -> None:
    data = "\ufeffName,Phone\r\nAda,(415) 555-0102\r\n\r\nBob,+1 415 555 0103\r\nEve\r\n"
    assert csv_addresses(io.BytesIO(data.encode())) == ["(415) 555-0102", "+1 415 555 0103", ""]
    assert csv_addresses(io.BytesIO(b"+14155550102\n+14155550103\n")) == [
        "+14155550102",
        "+14155550103",
    ]
    assert csv_addresses(io.BytesIO(b"")) == []


def test_reading_stops_at_the_limit_with_a_413_that_names_it() -> None:
    rows = b"".join(b"+1415%07d\n" % n for n in range(MAX_ENTRIES + 1))
    data = _Counted(b"phone\n" + rows + b"+14155550100\n" * 500_000)  # and 7 MB more
    with pytest.raises(Problem) as caught:
        csv_addresses(data)
    assert (caught.value.status, caught.value.code) == (413, "too_many_entries")
    assert caught.value.extra["limit"] == MAX_ENTRIES
    assert data.furthest < len(b"phone\n" + rows) + 64 * 1024, "read past the limit"
    assert len(csv_addresses(io.BytesIO(b"phone\n" + rows[: -len(b"+14150010000\n")]))) == (
        MAX_ENTRIES
    )


def test_unreadable_files_are_a_422() -> None:
    for data in (b"phone\n+1415\xff5550100\n", b'phone\n"' + b"x\n" * 5000):
        with pytest.raises(Problem) as caught:
            csv_addresses(io.BytesIO(data))
        assert (caught.value.status, caught.value.code) == (422, "invalid_csv")


def test_a_full_set_of_upload_slots_answers_429_with_retry_after() -> None:
    uploads = Uploads(pool=None, slots=1, retry_after=7)  # type: ignore[arg-type]

    async def run() -> Problem:
        async with uploads.slot():
            try:
                async with uploads.slot():
                    pass
            except Problem as exc:
                return exc
        raise AssertionError("a second upload got the only slot")

    problem = asyncio.run(run())
    assert (problem.status, problem.code) == (429, "uploads_busy")
    assert problem.response().headers["retry-after"] == "7"
    assert uploads.busy == 0
