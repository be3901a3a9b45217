"""``python -m simulators.whatsapp [--host 127.0.0.1] [--port 8092]``: run the WhatsApp simulator.

Configuration comes from the environment (see :class:`simulators.whatsapp.app.WhatsAppConfig`).
"""

from __future__ import annotations

from simulators.core.server import cli
from simulators.whatsapp.app import WhatsAppConfig, WhatsAppSimulator


def main(argv: list[str] | None = None) -> None:
    config = WhatsAppConfig.from_env()
    cli(
        "simulators.whatsapp",
        "Local WhatsApp Cloud API simulator",
        8092,
        lambda port: WhatsAppSimulator(config, port),
        argv,
    )


if __name__ == "__main__":
    main()
