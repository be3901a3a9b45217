"""Uploads are bounded apart from everything else (issue 19, the review): an import's
LAND and a suppression CSV take one of a few upload slots from their first byte to
their answer, and LAND's connection comes from a pool of the uploads' own. When every
slot is busy an upload is answered at once 429 uploads_busy with Retry-After, and the
sends go on meanwhile: slow uploads never take the connections they need."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx

from tests.system.conftest import Stack, module_stack

SLOTS = 2
BOUNDARY = "hermes-upload-test"


# One API process: the slots are per process.
stack = module_stack(
    "uploads",
    workers=0,
    api_processes=1,
    api_env={"HERMES_API_UPLOAD_SLOTS": str(SLOTS), "HERMES_API_POOL_MAX": "4"},
)


def _slow_upload(
    stack: Stack, token: str, gate: threading.Event, out: list[httpx.Response]
) -> None:
    """A CSV upload whose client sends the header row, then nothing until ``gate``."""

    def body() -> Iterator[bytes]:
        yield (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="slow.csv"\r\n'
            "Content-Type: text/csv\r\n\r\nfirst_name,last_name,phone\r\n"
        ).encode()
        gate.wait(30)
        yield f"Ada,Lovelace,+14155550199\r\n\r\n--{BOUNDARY}--\r\n".encode()

    with stack.api(token) as c:
        c.timeout = httpx.Timeout(60)
        out.append(
            c.post(
                "/v1/imports",
                content=body(),
                headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
            )
        )


def test_slow_uploads_take_the_upload_slots_never_the_sends(stack: Stack) -> None:
    tenant = stack.new_tenant("Uploads Co")
    token = tenant["api_key"]["token"]
    gate = threading.Event()
    answers: list[httpx.Response] = []
    slow = [
        threading.Thread(target=_slow_upload, args=(stack, token, gate, answers))
        for _ in range(SLOTS)
    ]
    for t in slow:
        t.start()
    try:
        # Both slow uploads hold their slot (and their LAND connection, mid-COPY) before
        # the next upload comes: else that one may take a slot first and a slow one be
        # the upload refused (seen on a loaded machine).
        deadline = time.monotonic() + 20
        while (
            time.monotonic() < deadline
            and stack.sql(
                "SELECT count(*) AS n FROM pg_stat_activity "
                "WHERE application_name = 'hermes-api-uploads' AND query LIKE 'COPY%%' AND state = 'active'"
            )[0]["n"]
            < SLOTS
        ):
            time.sleep(0.05)
        # The next upload is refused at once once the slow ones hold every slot (until
        # they do, it may get a free slot and land: try again).
        deadline = time.monotonic() + 20
        refused = None
        with stack.api(token) as c:
            while time.monotonic() < deadline:
                r = c.post(
                    "/v1/imports",
                    files={"file": ("fast.csv", b"phone\r\n+14155550198\r\n", "text/csv")},
                )
                if r.status_code == 429:
                    refused = r
                    break
                assert r.status_code == 202, r.text
                time.sleep(0.05)
            assert refused is not None, "no upload was refused while the slots were busy"
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["code"] == "uploads_busy"
            assert int(refused.headers["retry-after"]) > 0
            # Sends go on meanwhile, promptly.
            started = time.monotonic()
            r = c.post("/v1/messages", json={"to": "+14155550123", "body": "during uploads"})
            elapsed = time.monotonic() - started
        assert r.status_code == 201, r.text
        assert elapsed < 2, elapsed
        # So does a suppression CSV's refusal: it takes a slot too.
        with stack.api(token) as c:
            r = c.post(
                "/v1/suppressions",
                files={"file": ("dnc.csv", b"phone\r\n+14155550197\r\n", "text/csv")},
                data={"list": "do_not_contact"},
            )
        assert (r.status_code, r.json()["code"]) == (429, "uploads_busy"), r.text
    finally:
        gate.set()
        for t in slow:
            t.join(timeout=60)
    # The slow uploads land once their clients send the rest, through the uploads' pool.
    assert sorted(a.status_code for a in answers) == [202] * SLOTS, [a.text for a in answers]
    rows = stack.sql(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'hermes-api-uploads'"
    )
    assert rows[0]["n"] >= 1
