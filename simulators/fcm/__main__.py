"""``python -m simulators.fcm [--host 127.0.0.1] [--port 8091]``: run the FCM simulator.

Configuration comes from the environment (see :class:`simulators.fcm.app.FcmConfig`).
"""

from __future__ import annotations

import argparse
import logging

from simulators.core.server import run
from simulators.fcm.app import FcmConfig, FcmSimulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.fcm", description="Local FCM (HTTP v1) simulator"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = FcmConfig.from_env()
    run([(lambda: FcmSimulator(config, args.port), args.port)], args.host)


if __name__ == "__main__":
    main()
