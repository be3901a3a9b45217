"""``python -m simulators.vonage [--host 127.0.0.1] [--port 8093]``: run the Vonage simulator.

Configuration comes from the environment (see :class:`simulators.vonage.app.VonageConfig`).
"""

from __future__ import annotations

from simulators.core.server import cli
from simulators.vonage.app import VonageConfig, VonageSimulator


def main(argv: list[str] | None = None) -> None:
    config = VonageConfig.from_env()
    cli(
        "simulators.vonage",
        "Local Vonage SMS API simulator",
        8093,
        lambda port: VonageSimulator(config, port),
        argv,
    )


if __name__ == "__main__":
    main()
