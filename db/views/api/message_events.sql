-- api.message_events: what happened to each message, in order (append-only).
CREATE OR REPLACE VIEW api.message_events WITH (security_invoker = true) AS
SELECT e.id,
       e.message_id,
       e.message_created_at,
       e.event_type,
       e.status,
       e.provider_status,
       e.error_code,
       e.created_at,
       e.attempt_id,
       e.details
  FROM app.message_events e;

COMMENT ON VIEW api.message_events IS
  'The event ledger of your messages: accepted, claimed, handed_off, provider_status, fallback, step_timeout, ...';

REVOKE ALL ON api.message_events FROM PUBLIC;
GRANT SELECT ON api.message_events TO hermes_integrator, hermes_anon;
