"""Request body limit as a plain ASGI middleware.

A declared Content-Length over the limit is refused before anything is read; a body
without one (chunked) is counted while it is read and refused as soon as it passes
the limit, so nothing larger is ever buffered. A path whose limit is over
``buffer_max`` (the imports' uploads: gigabytes) is never buffered: its chunks are
counted as the app reads them, and past the limit the app sees the client go away and
the client gets the 413. Plain ASGI rather than
``@app.middleware("http")``: Starlette's BaseHTTPMiddleware runs every request through
an extra task and memory streams, which cost more than the rest of a status callback.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import Problem


class BodyLimit:
    def __init__(
        self, app: ASGIApp, limit_for: Callable[[str], int], buffer_max: int = 64 * 1024 * 1024
    ) -> None:
        self.app = app
        self.limit_for = limit_for
        self.buffer_max = buffer_max

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = self.limit_for(path)
        length: str | None = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value.decode("latin-1")
                break
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _refuse(scope, receive, send, path, limit)
            return
        if length is not None or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return

        if limit > self.buffer_max:
            await self._streamed(scope, receive, send, path, limit)
            return

        # Chunked: read it all here, counting, then replay it to the app.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _refuse(scope, receive, send, path, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _streamed(
        self, scope: Scope, receive: Receive, send: Send, path: str, limit: int
    ) -> None:
        size = 0
        over = False

        async def counted() -> Message:
            nonlocal size, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            size += len(message.get("body", b""))
            if size > limit:
                over = True
                return {"type": "http.disconnect"}
            return message

        refused = False

        async def guarded(message: Message) -> None:
            nonlocal refused
            if not over:
                await send(message)
            elif not refused:
                refused = True
                await _refuse(scope, receive, send, path, limit)

        await self.app(scope, counted, guarded)


async def _refuse(scope: Scope, receive: Receive, send: Send, path: str, limit: int) -> None:
    response = Problem(
        413, "payload_too_large", f"The request body exceeds {limit} bytes."
    ).response(path)
    await response(scope, receive, send)
