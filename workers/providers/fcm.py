"""Push through Firebase Cloud Messaging's HTTP v1 API.

Authentication is Google's, through the official library ``google-auth``: the
service-account key file (``FCM_SERVICE_ACCOUNT_FILE``, the JSON a Firebase project's
console hands out) signs a JWT that its ``token_uri`` exchanges for an OAuth 2.0 access
token (an hour's worth; refreshed before it runs out, one refresh at a time). The send is
one ``POST {FCM_BASE_URL}/v1/projects/{project_id}/messages:send`` per message on one
keep-alive aiohttp session (the Admin SDK's endpoint is not configurable; this is the
same HTTP call it makes). The base URL and the key file's ``token_uri`` are
configuration -- the local simulator in tests and sandboxes -- never a patch.

FCM answers with the message's name and sends no receipts: the answer is the hand-off
and the last word (``accepted``, final in private.provider_statuses). Errors carry FCM's
own code (``details[].errorCode``: UNREGISTERED, INVALID_ARGUMENT, SENDER_ID_MISMATCH,
QUOTA_EXCEEDED, UNAVAILABLE, INTERNAL, THIRD_PARTY_AUTH_ERROR), which is what SQL
decides on (app.record_send_error). A 401 means the access token was refused: it is
refreshed and the send made once more (nothing was sent). No lookups: FCM cannot be
asked about a message.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import google.auth.exceptions
import google.auth.transport.requests
import requests
from google.oauth2 import service_account

from hermes.credentials import CredentialsError, check_fcm_key
from workers.providers.base import Handoff, NoLookups, Outgoing, ProviderError, Slots
from workers.providers.twilio import retry_after_seconds

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
DEFAULT_BASE_URL = "https://fcm.googleapis.com"
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"


def fcm_error_code(status: int, body: bytes) -> tuple[str, str]:
    """(FCM's error code, its message) from an error answer: the FcmError detail's
    errorCode, else the google.rpc status, else ``http_<status>``."""
    try:
        error = json.loads(body).get("error") or {}
    except (ValueError, AttributeError):
        return f"http_{status}", "FCM answered an error that is not JSON"
    if not isinstance(error, dict):
        return f"http_{status}", "FCM answered an error"
    code = None
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("@type") == FCM_ERROR_TYPE:
            code = detail.get("errorCode")
    code = code or error.get("status") or f"http_{status}"
    return str(code), str(error.get("message") or "FCM refused the message")[:300]


def fcm_message(out: Outgoing) -> dict[str, Any]:
    """The v1 ``message`` of one push: a notification (title, body) and data (strings)."""
    notification: dict[str, str] = {"body": out.body}
    if out.content.get("title"):
        notification["title"] = str(out.content["title"])
    message: dict[str, Any] = {"token": out.to, "notification": notification}
    data = out.content.get("data")
    if isinstance(data, Mapping) and data:
        message["data"] = {
            str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()
        }
    return message


class FcmPush(NoLookups):
    name = "fcm"

    def __init__(
        self,
        key: str | Mapping[str, Any],
        base_url: str | None,
        timeout: float,
        connections: int = 64,
        token_uris: frozenset[str] | None = None,
    ) -> None:
        """``key``: the service-account key file's path, or its JSON (a tenant's account).
        ``token_uris``: the token endpoints the key may name (a tenant's account: Google's
        and the deployment's configured one); any other is refused here, before anything
        is POSTed to it (the registry then has no adapter for the account). None: the
        deployment's own key file, trusted."""
        info = json.loads(Path(key).read_text()) if isinstance(key, str) else dict(key)
        if token_uris is not None:
            try:
                info = check_fcm_key(info, token_uris)
            except CredentialsError as exc:
                raise ValueError(f"FCM key file refused: {exc}") from None
        self.project_id = str(info["project_id"])
        self.credentials: Any = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=[SCOPE]
        )
        base = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.url = f"{base}/v1/projects/{self.project_id}/messages:send"
        self.timeout = timeout
        self.connections = connections
        self._slots = Slots("FCM", connections, timeout / 2)
        self._session: aiohttp.ClientSession | None = None
        self._auth_http = requests.Session()
        self._refresh_lock = asyncio.Lock()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.connections),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        self._auth_http.close()

    async def _token(self, stale: str | None = None) -> str:
        """A valid access token; a fresh one when ``stale`` was refused."""
        async with self._refresh_lock:
            creds = self.credentials
            if not creds.valid or (stale is not None and creds.token == stale):
                request = google.auth.transport.requests.Request(self._auth_http)
                try:
                    async with asyncio.timeout(self.timeout):
                        await asyncio.to_thread(creds.refresh, request)
                except (google.auth.exceptions.GoogleAuthError, TimeoutError) as exc:
                    # Not the message's fault, and nothing was sent: retried by SQL.
                    raise ProviderError(
                        "auth_failed", "the FCM access token could not be obtained", 401
                    ) from exc
            return str(creds.token)

    async def send(self, out: Outgoing) -> Handoff:
        body = json.dumps({"message": fcm_message(out)}).encode()
        token = await self._token()
        for refreshed in (False, True):
            # A free connection first (base.Slots: none in time is sent=False); the
            # session's timeout then bounds the call alone.
            async with self._slots.slot():
                try:
                    async with self._http().post(
                        self.url,
                        data=body,
                        headers={
                            "Authorization": f"Bearer {token}",
                            "Content-Type": "application/json; charset=UTF-8",
                        },
                    ) as response:
                        answer = await response.read()
                        status = response.status
                        headers = response.headers
                except (TimeoutError, aiohttp.ClientError) as exc:
                    # No answer: FCM may or may not have it (never resent blindly).
                    raise ProviderError(type(exc).__name__, "no answer from FCM", None) from exc
            if status == 401 and not refreshed:
                token = await self._token(stale=token)  # refused token: nothing was sent
                continue
            break
        if status != 200:
            code, message = fcm_error_code(status, answer)
            raise ProviderError(
                code, message, status, retry_after_seconds(headers, datetime.now(UTC))
            )
        try:
            name = str(json.loads(answer)["name"])
        except (ValueError, KeyError, TypeError) as exc:
            # It answered 200: it has the message. Without a name we cannot match it,
            # but FCM sends no receipts anyway; the answer itself is the hand-off.
            raise ProviderError("bad_answer", "FCM answered 200 without a name", None) from exc
        return Handoff(provider_message_id=name, provider_status="accepted")
