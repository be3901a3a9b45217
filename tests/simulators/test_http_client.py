"""The simulator's callback client (simulators.core.http_client) against scripted
HTTP servers in this process: keep-alive, stale connections, timeouts, the pool limit,
response framings, cancellation."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from hermes.services import free_port
from simulators.core.http_client import HttpClient, ProtocolError, Target


@dataclass
class Seen:
    """What a scripted server saw: requests (head, body) per connection."""

    connections: list[list[tuple[bytes, bytes]]] = field(default_factory=list)
    open_now: int = 0
    open_max: int = 0

    @property
    def requests(self) -> list[tuple[bytes, bytes]]:
        return [r for conn in self.connections for r in conn]


# answer(connection index, request index on it, head, body) -> bytes to send, or None to
# close the connection without answering.
Answer = Callable[[int, int, bytes, bytes], Awaitable[bytes | None]]


async def scripted_server(answer: Answer) -> tuple[asyncio.Server, int, Seen]:
    seen = Seen()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = len(seen.connections)
        mine: list[tuple[bytes, bytes]] = []
        seen.connections.append(mine)
        seen.open_now += 1
        seen.open_max = max(seen.open_max, seen.open_now)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                mine.append((head, body))
                reply = await answer(index, len(mine) - 1, head, body)
                if reply is None:
                    return
                writer.write(reply)
                await writer.drain()
        finally:
            seen.open_now -= 1
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, port, seen


def ok(status: int = 200) -> Answer:
    async def answer(conn: int, req: int, head: bytes, body: bytes) -> bytes:
        return b"HTTP/1.1 %d X\r\nContent-Length: 2\r\n\r\nok" % status

    return answer


HEADERS = b"Content-Type: application/x-www-form-urlencoded\r\nX-Test: 1\r\n"


def test_target_parse() -> None:
    t = Target.parse("http://127.0.0.1:8000/v1/callbacks/twilio/abc?tenant=acme&n=1")
    assert (t.scheme, t.host, t.port) == ("http", "127.0.0.1", 8000)
    assert t.head == (
        b"POST /v1/callbacks/twilio/abc?tenant=acme&n=1 HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
    )
    assert Target.parse("https://Example.COM").key == ("https", "example.com", 443)
    assert Target.parse("https://example.com").head.startswith(b"POST / HTTP/1.1\r\n")
    assert Target.parse("http://example.com/a b/%41?x=é").head.startswith(
        b"POST /a%20b/%41?x=%C3%A9 HTTP/1.1\r\nHost: example.com\r\n"
    )
    creds = base64.b64encode(b"user:p@ss").decode()
    with_auth = Target.parse("http://user:p%40ss@example.com:81/cb")
    assert with_auth.head == (
        b"POST /cb HTTP/1.1\r\nHost: example.com:81\r\n"
        + f"Authorization: Basic {creds}\r\n".encode()
    )
    for bad in ("ftp://example.com/", "/relative", "http://"):
        with pytest.raises(ValueError):
            Target.parse(bad)


def test_keep_alive_reuses_one_connection() -> None:
    async def main() -> None:
        server, port, seen = await scripted_server(ok())
        client = HttpClient(timeout=5)
        target = Target.parse(f"http://127.0.0.1:{port}/cb/1?x=y")
        try:
            codes = [await client.post(target, HEADERS, b"a=%d" % i) for i in range(5)]
        finally:
            client.close()
            server.close()
        assert codes == [200] * 5
        assert len(seen.connections) == 1
        head, _ = seen.requests[0]
        assert head.startswith(b"POST /cb/1?x=y HTTP/1.1\r\n")
        assert f"Host: 127.0.0.1:{port}\r\n".encode() in head
        assert b"X-Test: 1\r\nContent-Length: 3\r\n\r\n" in head
        assert [b for _, b in seen.requests] == [b"a=%d" % i for i in range(5)]

    asyncio.run(main())


def test_stale_keep_alive_connection_is_retried_on_a_new_one() -> None:
    async def answer(conn: int, req: int, head: bytes, body: bytes) -> bytes | None:
        if conn == 0 and req == 1:
            return None  # the server drops the idle connection as it is reused
        return b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"

    async def main() -> None:
        server, port, seen = await scripted_server(answer)
        client = HttpClient(timeout=5)
        target = Target.parse(f"http://127.0.0.1:{port}/cb")
        try:
            assert await client.post(target, HEADERS, b"first") == 200
            assert await client.post(target, HEADERS, b"second") == 200
        finally:
            client.close()
            server.close()
        assert [[b for _, b in c] for c in seen.connections] == [
            [b"first", b"second"],
            [b"second"],
        ]

    asyncio.run(main())


def test_new_connection_closed_without_answer_is_an_error() -> None:
    async def answer(conn: int, req: int, head: bytes, body: bytes) -> bytes | None:
        return None

    async def main() -> None:
        server, port, seen = await scripted_server(answer)
        client = HttpClient(timeout=5)
        try:
            with pytest.raises(ConnectionResetError, match="without answering"):
                await client.post(Target.parse(f"http://127.0.0.1:{port}/"), HEADERS, b"x")
        finally:
            client.close()
            server.close()
        assert len(seen.connections) == 1

    asyncio.run(main())


def test_refused_and_not_http() -> None:
    async def garbage(conn: int, req: int, head: bytes, body: bytes) -> bytes:
        return b"SSH-2.0-OpenSSH_9.6\r\n\r\n"

    async def main() -> None:
        client = HttpClient(timeout=5)
        with pytest.raises(ConnectionRefusedError):
            await client.post(Target.parse(f"http://127.0.0.1:{free_port()}/"), HEADERS, b"x")
        server, port, _ = await scripted_server(garbage)
        try:
            with pytest.raises(ProtocolError):
                await client.post(Target.parse(f"http://127.0.0.1:{port}/"), HEADERS, b"x")
        finally:
            client.close()
            server.close()

    asyncio.run(main())


def test_timeout_closes_the_connection() -> None:
    async def slow(conn: int, req: int, head: bytes, body: bytes) -> bytes:
        await asyncio.sleep(0.5 if conn == 0 else 0)
        return b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"

    async def main() -> None:
        server, port, seen = await scripted_server(slow)
        client = HttpClient(timeout=0.1)
        target = Target.parse(f"http://127.0.0.1:{port}/")
        try:
            with pytest.raises(TimeoutError):
                await client.post(target, HEADERS, b"x")
            assert await client.post(target, HEADERS, b"y") == 200
        finally:
            client.close()
            server.close()
        assert len(seen.connections) == 2  # the late answer is never read as the next one

    asyncio.run(main())


def test_pool_limit_queues_requests() -> None:
    async def slowish(conn: int, req: int, head: bytes, body: bytes) -> bytes:
        await asyncio.sleep(0.05)
        return b"HTTP/1.1 204 No Content\r\n\r\n"

    async def main() -> None:
        server, port, seen = await scripted_server(slowish)
        client = HttpClient(timeout=5, max_connections=2)
        target = Target.parse(f"http://127.0.0.1:{port}/")
        try:
            codes = await asyncio.gather(
                *(client.post(target, HEADERS, b"%d" % i) for i in range(7))
            )
        finally:
            client.close()
            server.close()
        assert codes == [204] * 7
        assert seen.open_max == 2 and len(seen.connections) == 2
        assert sorted(b for _, b in seen.requests) == sorted(b"%d" % i for i in range(7))

    asyncio.run(main())


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 200),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", 201),
        (b"HTTP/1.1 204 No Content\r\n\r\n", 204),
        (b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n", 302),
        (b"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy", 503),
    ],
)
def test_response_framings(raw: bytes, code: int) -> None:
    async def answer(conn: int, req: int, head: bytes, body: bytes) -> bytes:
        return raw

    async def main() -> None:
        server, port, seen = await scripted_server(answer)
        client = HttpClient(timeout=5)
        target = Target.parse(f"http://127.0.0.1:{port}/")
        try:
            assert [await client.post(target, HEADERS, b"x") for _ in range(2)] == [code, code]
        finally:
            client.close()
            server.close()
        assert len(seen.connections) == 1  # each framing leaves the connection reusable

    asyncio.run(main())


def test_body_until_close() -> None:
    async def main() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.0 202 Accepted\r\n\r\nuntil the end")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = HttpClient(timeout=5)
        target = Target.parse(f"http://127.0.0.1:{port}/")
        try:
            assert await client.post(target, HEADERS, b"") == 202
            assert await client.post(target, HEADERS, b"") == 202
        finally:
            client.close()
            server.close()

    asyncio.run(main())


def test_cancelled_request_does_not_reuse_its_connection() -> None:
    async def slow_first(conn: int, req: int, head: bytes, body: bytes) -> bytes:
        if conn == 0:
            await asyncio.sleep(0.3)
        return b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"

    async def main() -> None:
        server, port, seen = await scripted_server(slow_first)
        client = HttpClient(timeout=5, max_connections=1)
        target = Target.parse(f"http://127.0.0.1:{port}/")
        try:
            task = asyncio.ensure_future(client.post(target, HEADERS, b"cancelled"))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # The pool's only slot was given back; the next request gets a new connection.
            assert await asyncio.wait_for(client.post(target, HEADERS, b"next"), 2) == 200
        finally:
            client.close()
            server.close()
        assert [[b for _, b in c] for c in seen.connections] == [[b"cancelled"], [b"next"]]

    asyncio.run(main())
