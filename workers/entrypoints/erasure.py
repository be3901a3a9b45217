"""The ``provider_delete`` job (erasure): the provider's copy of an erased person's
message is deleted where the provider allows it (Twilio's Message DELETE).

``private.erase_addresses`` enqueues one job per handed-off step, in the erasure's
transaction, carrying only the provider, the tenant's account (NULL: the
deployment's), the tenant's environment and the provider's message id -- never an
address or a body. The adapter is the one that sent it: the registry's, for that
account (a sandbox tenant's went to the simulators)."""

from __future__ import annotations

import json
import logging
from typing import Any

from workers.providers.registry import Registry

log = logging.getLogger("hermes.worker.erasure")


async def delete_at_provider(registry: Registry, payload: bytes | None) -> bool:
    """Deletes one message at its provider; True if deleted, False if the provider
    did not have it (any more). A refusal or no answer raises (the job is held)."""
    job: dict[str, Any] = json.loads(payload or b"{}")
    claim = {
        "provider": str(job["provider"]),
        "provider_account_id": job.get("provider_account_id"),
        "environment": job.get("environment"),
    }
    sid = str(job["provider_message_id"])
    await registry.prepare([claim])
    adapter = registry.for_claim(claim)
    delete = getattr(adapter, "delete", None)
    if delete is None:
        log.warning("provider_delete %s %s: no adapter that can delete", claim["provider"], sid)
        return False
    gone = bool(await delete(sid))
    log.info(
        "provider_delete %s %s: %s", claim["provider"], sid, "deleted" if gone else "not found"
    )
    return gone
