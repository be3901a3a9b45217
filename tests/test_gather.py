"""hermes.gather.Gatherer: concurrent submits become batches, each caller gets its own
outcome, and a failed batch fails each of its callers (never leaves one waiting)."""

from __future__ import annotations

import asyncio

import pytest

from hermes.gather import Gatherer


def test_submits_within_the_linger_are_one_batch_and_answered_in_order() -> None:
    batches: list[list[int]] = []

    async def run(items: list[int]) -> list[int | BaseException]:
        batches.append(items)
        return [i * 10 if i != 3 else ValueError("three") for i in items]

    async def main() -> list[object]:
        g: Gatherer[int, int] = Gatherer(run, max_batch=100, linger=0.05)
        return await asyncio.gather(*(g.submit(i) for i in range(5)), return_exceptions=True)

    out = asyncio.run(main())
    assert batches == [[0, 1, 2, 3, 4]]
    assert out[:3] == [0, 10, 20] and out[4] == 40
    assert isinstance(out[3], ValueError)


def test_max_batch_flushes_at_once() -> None:
    batches: list[list[int]] = []

    async def run(items: list[int]) -> list[int | BaseException]:
        batches.append(items)
        return list(items)

    async def main() -> None:
        g: Gatherer[int, int] = Gatherer(run, max_batch=2, linger=10.0)
        assert await asyncio.wait_for(asyncio.gather(*(g.submit(i) for i in range(4))), 2) == [
            0,
            1,
            2,
            3,
        ]

    asyncio.run(main())
    assert batches == [[0, 1], [2, 3]]


def test_a_failing_batch_fails_every_caller() -> None:
    async def run(items: list[int]) -> list[int | BaseException]:
        raise RuntimeError("database gone")

    async def main() -> list[object]:
        g: Gatherer[int, int] = Gatherer(run, max_batch=100, linger=0.01)
        return await asyncio.wait_for(
            asyncio.gather(*(g.submit(i) for i in range(3)), return_exceptions=True), 2
        )

    out = asyncio.run(main())
    assert all(isinstance(o, RuntimeError) for o in out)


@pytest.mark.parametrize("n", [1, 7])
def test_later_submits_start_a_new_batch(n: int) -> None:
    batches: list[list[int]] = []

    async def run(items: list[int]) -> list[int | BaseException]:
        batches.append(items)
        return list(items)

    async def main() -> None:
        g: Gatherer[int, int] = Gatherer(run, max_batch=100, linger=0.01)
        await asyncio.gather(*(g.submit(i) for i in range(n)))
        await g.submit(99)

    asyncio.run(main())
    assert batches == [list(range(n)), [99]]
