"""Request dependencies: the command wrapper and the bearer token."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.db import Commands
from api.errors import Problem
from api.submit import Submits
from api.uploads import Uploads


async def get_commands(request: Request) -> Commands:
    # async: FastAPI runs a plain def dependency in a thread pool, a thread hop per request.
    commands: Commands = request.app.state.commands
    return commands


CommandsDep = Annotated[Commands, Depends(get_commands)]


async def get_submits(request: Request) -> Submits:
    submits: Submits = request.app.state.submits
    return submits


SubmitsDep = Annotated[Submits, Depends(get_submits)]


async def get_uploads(request: Request) -> Uploads:
    uploads: Uploads = request.app.state.uploads
    return uploads


UploadsDep = Annotated[Uploads, Depends(get_uploads)]


async def bearer_token(request: Request) -> str:
    """The bearer token of the request, unchecked: the command function it is passed to
    authenticates it and checks its scope in SQL, in the command's own transaction."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(
            401,
            "missing_api_key",
            "Missing API key.",
            'Send "Authorization: Bearer <api key>".',
        )
    return token.strip()


Token = Annotated[str, Depends(bearer_token)]
