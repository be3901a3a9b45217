"""A local WhatsApp Business Cloud API simulator with signed status webhooks.

See :mod:`simulators.whatsapp.app`; run it with ``python -m simulators.whatsapp [--port 8092]``.
"""

from simulators.whatsapp.app import WhatsAppConfig, WhatsAppSimulator

__all__ = ["WhatsAppConfig", "WhatsAppSimulator"]
