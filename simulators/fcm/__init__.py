"""A local Firebase Cloud Messaging HTTP v1 simulator with Google's OAuth token endpoint.

See :mod:`simulators.fcm.app`; run it with ``python -m simulators.fcm [--port 8091]``.
"""

from simulators.fcm.app import FcmConfig, FcmSimulator

__all__ = ["FcmConfig", "FcmSimulator"]
