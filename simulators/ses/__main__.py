"""``python -m simulators.ses [--host 127.0.0.1] [--port 8090]``: run the SES simulator.

Configuration comes from the environment (see :class:`simulators.ses.app.SesConfig`).
"""

from __future__ import annotations

import argparse
import logging

from simulators.core.server import run
from simulators.ses.app import SesConfig, SesSimulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.ses", description="Local Amazon SES simulator"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = SesConfig.from_env()
    run([(lambda: SesSimulator(config, args.port), args.port)], args.host)


if __name__ == "__main__":
    main()
