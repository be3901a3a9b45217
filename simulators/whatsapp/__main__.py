"""``python -m simulators.whatsapp [--host 127.0.0.1] [--port 8092]``: run the WhatsApp simulator.

Configuration comes from the environment (see :class:`simulators.whatsapp.app.WhatsAppConfig`).
"""

from __future__ import annotations

import argparse
import logging

from simulators.core.server import run
from simulators.whatsapp.app import WhatsAppConfig, WhatsAppSimulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.whatsapp", description="Local WhatsApp Cloud API simulator"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8092)
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = WhatsAppConfig.from_env()
    run([(lambda: WhatsAppSimulator(config, args.port), args.port)], args.host)


if __name__ == "__main__":
    main()
