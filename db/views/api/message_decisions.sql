-- api.message_decisions: every eligibility decision about your messages -- at
-- acceptance, at each claim (hand-off) and before a resend -- with its reasons. "Why
-- was this message refused?" is one query:
--   SELECT * FROM api.message_decisions WHERE message_id = '...' ORDER BY decided_at;
-- (Operators: the same rows without RLS are in app.message_events.)
CREATE OR REPLACE VIEW api.message_decisions WITH (security_invoker = true) AS
SELECT e.message_id,
       e.message_created_at,
       e.attempt_id,
       CASE e.event_type WHEN 'accepted' THEN 'accept'
                         WHEN 'claimed' THEN 'claim'
                         WHEN 'resend' THEN 'resend'
                         ELSE coalesce(e.details ->> 'stage', 'claim') END AS stage,
       CASE e.event_type WHEN 'rejected' THEN 'rejected'
                         WHEN 'deferred' THEN 'deferred'
                         ELSE 'eligible' END AS decision,
       coalesce(e.details -> 'reasons', '[]'::jsonb) AS reasons,
       (e.details ->> 'next_allowed_at')::timestamptz AS next_allowed_at,
       e.details -> 'rules' AS rules,
       e.created_at AS decided_at
  FROM app.message_events e
 WHERE e.event_type IN ('accepted', 'claimed', 'resend', 'rejected', 'deferred');
COMMENT ON VIEW api.message_decisions IS
  'Each eligibility decision (stage accept | claim | resend; decision eligible | rejected | deferred) with reasons.';
REVOKE ALL ON api.message_decisions FROM PUBLIC;
GRANT SELECT ON api.message_decisions TO hermes_integrator, hermes_anon;
