"""A local, Twilio-compatible SMS simulator (Messages API + status callbacks).

See :mod:`simulators.twilio.app` for the behaviour, and run it with
``python -m simulators.twilio [--host 127.0.0.1] [--port 8089]``.
"""

from simulators.twilio.app import SimConfig, Simulator, compute_signature, create_app

__all__ = ["SimConfig", "Simulator", "compute_signature", "create_app"]
