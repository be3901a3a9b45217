"""A local Amazon SES v2 simulator with SNS-delivered, signed events.

See :mod:`simulators.ses.app`; run it with ``python -m simulators.ses [--port 8090]``.
"""

from simulators.ses.app import SesConfig, SesSimulator

__all__ = ["SesConfig", "SesSimulator"]
