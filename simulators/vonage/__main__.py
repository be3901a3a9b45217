"""``python -m simulators.vonage [--host 127.0.0.1] [--port 8093]``: run the Vonage simulator.

Configuration comes from the environment (see :class:`simulators.vonage.app.VonageConfig`).
"""

from __future__ import annotations

import argparse
import logging

from simulators.core.server import run
from simulators.vonage.app import VonageConfig, VonageSimulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.vonage", description="Local Vonage SMS API simulator"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8093)
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = VonageConfig.from_env()
    run([(lambda: VonageSimulator(config, args.port), args.port)], args.host)


if __name__ == "__main__":
    main()
