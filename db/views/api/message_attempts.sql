-- api.message_attempts: the steps of your messages -- one attempt per channel step of
-- a cascade (a single-channel message has one) -- with what each became.
CREATE OR REPLACE VIEW api.message_attempts WITH (security_invoker = true) AS
SELECT a.id,
       a.message_id,
       a.message_created_at,
       a.attempt_no AS step,
       a.attempt_no > 1 AS is_fallback,
       a.channel,
       a.provider,
       a.status,
       a.to_address AS "to",
       a.from_address AS "from",
       a.provider_message_id,
       a.provider_status,
       a.error_code,
       a.error_message,
       a.reasons,
       extract(epoch FROM a.step_timeout)::int AS timeout_seconds,
       a.claimed_at,
       a.handed_off_at,
       a.completed_at,
       a.created_at,
       a.updated_at
  FROM app.message_attempts a;

COMMENT ON VIEW api.message_attempts IS
  E'The steps of your messages, one attempt each, in order (step). status: waiting (a later step), '
  'pending, claimed, handed_off, timed_out (no final receipt in time: the cascade moved on), delivered, '
  'undelivered, failed, rejected (not sent: reasons), canceled (an earlier step was delivered), unknown.';
COMMENT ON COLUMN api.message_attempts.is_fallback IS 'true for every step after the first.';
COMMENT ON COLUMN api.message_attempts.timeout_seconds IS
  'How long the step waited for a final receipt before the cascade moved on (none on the last step).';

REVOKE ALL ON api.message_attempts FROM PUBLIC;
GRANT SELECT ON api.message_attempts TO hermes_integrator, hermes_anon;
