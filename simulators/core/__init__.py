"""What every provider simulator shares: the HTTP server (:mod:`.server`), the callback
client (:mod:`.http_client`) and the small kit of :mod:`.base` (replies, environment
settings, the handler interface). One module per provider speaks its wire format and
signs its callbacks its way: :mod:`simulators.twilio`, :mod:`simulators.ses`,
:mod:`simulators.fcm`, :mod:`simulators.whatsapp`, :mod:`simulators.vonage` (TLS from
:mod:`.tls`)."""
