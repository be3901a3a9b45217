-- api.messages: the integrator's messages. security_invoker, so the row-level
-- security of app.messages applies to the requesting role (one tenant per request).
CREATE OR REPLACE VIEW api.messages WITH (security_invoker = true) AS
SELECT m.id,
       m.created_at,
       m.channel,
       m.status,
       m.to_address AS "to",
       m.from_address AS "from",
       m.body,
       m.provider,
       m.provider_message_id,
       m.error_code,
       m.error_message,
       m.updated_at,
       m.sent_at,
       m.completed_at,
       m.reasons,
       m.vertical,
       m.category
  FROM app.messages m;

COMMENT ON VIEW api.messages IS
  E'Your messages, newest first with ?order=created_at.desc. status: queued, sending, sent, '
  'delivered, undelivered, failed, rejected, unknown (the last five are terminal).';
COMMENT ON COLUMN api.messages.status IS
  'queued -> sending -> sent -> delivered | undelivered | failed; rejected if Hermes did not send it; '
  'unknown if the carrier never sent a final receipt (72 h).';
COMMENT ON COLUMN api.messages.reasons IS
  'Why Hermes did not send it (status rejected): [{code: opted_out | suppressed | ..., ...}].';
COMMENT ON COLUMN api.messages.error_code IS 'Why it failed, e.g. twilio:30003 (unreachable handset).';

REVOKE ALL ON api.messages FROM PUBLIC;
GRANT SELECT ON api.messages TO hermes_integrator, hermes_anon;
