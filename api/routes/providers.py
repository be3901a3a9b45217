"""A tenant's own provider accounts: credentials in, sealed; never out.

The credentials' shape is checked here (hermes/credentials.py) because SQL never sees
them: the API seals them with the deployment's key under an account id it picks -- and
their webhook-verification secret apart, the only part the API itself ever opens again --
and ``app.set_provider_account`` stores the ciphertexts (scope providers:write: keys:write
alone does not reach provider accounts, which receive every later message). Read which accounts
exist through ``api.provider_accounts``.
"""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CommandsDep, Token
from api.errors import Problem
from hermes.credentials import (
    CredentialsError,
    Sealer,
    check_shape,
    fcm_token_uris,
    webhook_part,
)

router = APIRouter(prefix="/v1")


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider: str = Field(max_length=40)
    name: str = Field(max_length=100)
    credentials: dict[str, Any]


@router.post("/provider-accounts", status_code=201)
async def set_provider_account(
    body: AccountCreate, request: Request, token: Token, commands: CommandsDep
) -> dict[str, Any]:
    sealer: Sealer | None = request.app.state.sealer
    if sealer is None:
        raise Problem(
            503,
            "credentials_key_missing",
            "This deployment has no credentials key (HERMES_CREDENTIALS_KEYS): it stores no "
            "provider accounts.",
        )
    try:
        credentials = check_shape(
            body.provider,
            body.credentials,
            fcm_token_uris(request.app.state.settings.fcm_token_uri),
        )
    except CredentialsError as exc:
        raise Problem(422, "invalid_credentials", str(exc)) from None
    account_id = str(uuid.uuid4())
    # The webhook-verification secret sealed apart: the API opens only that one later.
    return await commands.set_provider_account(
        token,
        account_id,
        body.provider,
        body.name,
        sealer.seal(account_id, body.provider, credentials),
        sealer.seal(
            account_id, body.provider, webhook_part(body.provider, credentials), purpose="webhook"
        ),
    )


@router.post("/provider-accounts/{account_id}/disable")
async def disable_provider_account(
    account_id: UUID, token: Token, commands: CommandsDep
) -> dict[str, Any]:
    return await commands.disable_provider_account(token, str(account_id))
