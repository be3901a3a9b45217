"""``python -m simulators.fcm [--host 127.0.0.1] [--port 8091]``: run the FCM simulator.

Configuration comes from the environment (see :class:`simulators.fcm.app.FcmConfig`).
"""

from __future__ import annotations

from simulators.core.server import cli
from simulators.fcm.app import FcmConfig, FcmSimulator


def main(argv: list[str] | None = None) -> None:
    config = FcmConfig.from_env()
    cli(
        "simulators.fcm",
        "Local FCM (HTTP v1) simulator",
        8091,
        lambda port: FcmSimulator(config, port),
        argv,
    )


if __name__ == "__main__":
    main()
