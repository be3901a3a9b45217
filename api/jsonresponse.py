"""A JSON response serialized once with orjson.

The SQL functions already return the JSON the client gets; FastAPI's default path
(response-model validation, then jsonable_encoder) would walk it twice more.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
