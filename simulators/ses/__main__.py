"""``python -m simulators.ses [--host 127.0.0.1] [--port 8090]``: run the SES simulator.

Configuration comes from the environment (see :class:`simulators.ses.app.SesConfig`).
"""

from __future__ import annotations

from simulators.core.server import cli
from simulators.ses.app import SesConfig, SesSimulator


def main(argv: list[str] | None = None) -> None:
    config = SesConfig.from_env()
    cli(
        "simulators.ses",
        "Local Amazon SES simulator",
        8090,
        lambda port: SesSimulator(config, port),
        argv,
    )


if __name__ == "__main__":
    main()
