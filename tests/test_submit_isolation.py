"""api.submit.Submits: gathered callers are answered each on their own. A statement
error the server rolled back (one poison item) is retried item by item, so only the
poison item fails; a refusal of the call (HM4xx: the key) answers that key's callers
and no other key's; an answer that cannot be read is that caller's 500 alone."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg

from api.errors import Problem
from api.submit import Submits


class FakeCommands:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    async def submit_gathered(self, token: str, items: list[dict[str, Any]]) -> list[Any]:
        self.calls.append((token, len(items)))
        if token == "refused":
            err = psycopg.errors.RaiseException("key refused")
            err.sqlstate = "HM401"
            raise err
        if any(i["request"].get("poison") for i in items):
            raise psycopg.errors.NotNullViolation("a bug one item triggers")
        return [
            {"status": 201, "message": {"body": i["request"]["body"]}}
            if i["request"].get("body") != "unreadable"
            else {"status": None}
            for i in items
        ]


def test_each_caller_is_answered_alone() -> None:
    commands = FakeCommands()
    submits = Submits(commands, linger=0.05)  # type: ignore[arg-type]

    async def main() -> list[object]:
        answers: list[object] = await asyncio.gather(
            submits.submit("a", {"body": "a1"}, None),
            submits.submit("a", {"body": "a2", "poison": True}, None),
            submits.submit("a", {"body": "a3"}, None),
            submits.submit("a", {"body": "unreadable"}, None),
            submits.submit("b", {"body": "b1"}, None),
            submits.submit("refused", {"body": "r1"}, None),
            return_exceptions=True,
        )
        return answers

    a1, a2, a3, bad, b1, r1 = asyncio.run(main())
    assert a1 == {"message": {"body": "a1"}, "replayed": False}
    assert a3 == {"message": {"body": "a3"}, "replayed": False}
    assert isinstance(a2, psycopg.errors.NotNullViolation)  # its own 500 (api.errors)
    assert isinstance(bad, Problem) and bad.status == 500 and "request_id" in bad.extra
    assert b1 == {"message": {"body": "b1"}, "replayed": False}
    assert isinstance(r1, psycopg.Error) and r1.sqlstate == "HM401"
    # a's group of four once, then each of a's items alone; b and the refused key once.
    assert sorted(commands.calls) == sorted(
        [("a", 4), ("a", 1), ("a", 1), ("a", 1), ("a", 1), ("b", 1), ("refused", 1)]
    )
