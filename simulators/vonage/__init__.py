"""A local Vonage SMS API simulator (TLS, signed delivery receipts).

See :mod:`simulators.vonage.app`; run it with ``python -m simulators.vonage [--port 8093]``.
"""

from simulators.vonage.app import VonageConfig, VonageSimulator

__all__ = ["VonageConfig", "VonageSimulator"]
