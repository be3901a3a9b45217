"""Email through Amazon SES v2 (``SendEmail``) with the official SDK, ``boto3``.

Every message goes out under the configuration set whose event destination (SNS ->
``POST /v1/webhooks/ses/sns``) reports what became of it, and carries the attempt id as
the message tag ``hermes_attempt_id``: SES echoes the tags in every event, so a receipt
finds its attempt even when the worker died before it recorded SES's MessageId.

boto3 is synchronous: calls run in a thread pool of the worker's provider concurrency,
on one client (boto3 clients are thread-safe); a call takes its thread (base.Slots)
before its timeout starts, and one that gets none is not sent (``sent=False``).
The SDK's own retries are off: a retry
after a timeout could send the email twice; what to retry is decided in SQL
(app.record_send_error), and a call whose outcome is unknown is never repeated blindly.
The endpoint is configuration (``SES_ENDPOINT_URL``: the local simulator), never a patch.
SES cannot be asked about a message (no lookup by recipient): ``lookups`` is False.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from workers.providers.base import Handoff, NoLookups, Outgoing, ProviderError, Slots

ATTEMPT_TAG = "hermes_attempt_id"


class SesEmail(NoLookups):
    name = "ses"

    def __init__(
        self,
        region: str,
        access_key_id: str,
        secret_access_key: str,
        configuration_set: str | None,
        endpoint_url: str | None,
        timeout: float,
        connections: int = 64,
    ) -> None:
        self.timeout = timeout
        self.configuration_set = configuration_set
        self._pool = ThreadPoolExecutor(max_workers=connections, thread_name_prefix="ses")
        self._slots = Slots("SES", connections, timeout / 2)
        self.client: Any = boto3.session.Session().client(
            "sesv2",
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            endpoint_url=endpoint_url,
            config=Config(
                retries={"total_max_attempts": 1, "mode": "standard"},
                connect_timeout=timeout,
                read_timeout=timeout,
                max_pool_connections=connections,
            ),
        )

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _request(self, out: Outgoing) -> dict[str, Any]:
        body: dict[str, Any] = {"Text": {"Data": out.body, "Charset": "UTF-8"}}
        if out.content.get("html"):
            body["Html"] = {"Data": str(out.content["html"]), "Charset": "UTF-8"}
        request: dict[str, Any] = {
            "FromEmailAddress": out.from_,
            "Destination": {"ToAddresses": [out.to]},
            "Content": {
                "Simple": {
                    "Subject": {"Data": str(out.content.get("subject", "")), "Charset": "UTF-8"},
                    "Body": body,
                }
            },
            "EmailTags": [{"Name": ATTEMPT_TAG, "Value": out.attempt_id}],
        }
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        return request

    async def send(self, out: Outgoing) -> Handoff:
        request = self._request(out)
        try:
            # The slot (a thread of the pool) is taken before the timeout starts.
            answer = await self._slots.in_thread(
                self._pool, lambda: self.client.send_email(**request), self.timeout + 1
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            meta = exc.response.get("ResponseMetadata", {})
            status = int(meta.get("HTTPStatusCode") or 0) or None
            retry_after = (meta.get("HTTPHeaders") or {}).get("retry-after")
            raise ProviderError(
                str(error.get("Code") or f"http_{status}"),
                str(error.get("Message") or "SES refused the email")[:300],
                status,
                float(retry_after) if retry_after and retry_after.isdigit() else None,
            ) from exc
        except (TimeoutError, BotoCoreError) as exc:
            # No answer (timeout, connection lost): SES may or may not have it. The
            # exception text can name the endpoint: keep only its kind.
            raise ProviderError(type(exc).__name__, "no answer from SES", None) from exc
        return Handoff(provider_message_id=str(answer["MessageId"]), provider_status="Send")
