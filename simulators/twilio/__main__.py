"""``python -m simulators.twilio [--host 127.0.0.1] [--port 8089]``: run the simulator.

Configuration comes from the environment (see :class:`simulators.twilio.app.SimConfig`).
Logs one line per API call (``API ...``) and per status callback attempt
(``CALLBACK ...``) on stderr, at INFO (DEBUG with ``SIM_TWILIO_LOG_REQUESTS=0``).
"""

from __future__ import annotations

import argparse
import logging

from simulators.core.server import run
from simulators.twilio.app import SimConfig, Simulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.twilio", description="Local Twilio-compatible SMS simulator"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = SimConfig.from_env()
    run([(lambda: Simulator(config), args.port)], args.host)


if __name__ == "__main__":
    main()
