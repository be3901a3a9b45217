-- api.senders: the senders you may send from -- your own numbers, WhatsApp business
-- numbers, email addresses and domains and, for a sandbox or test tenant, the
-- simulators' shared ones. Registered by the operator (POST /v1/senders).
CREATE OR REPLACE VIEW api.senders WITH (security_invoker = true) AS
SELECT s.id,
       s.channel,
       s.kind,
       s.address,
       s.shared,
       s.number_type,
       s.time_zone,
       s.status,
       s.provider_account_id,
       s.created_at,
       s.updated_at
  FROM app.senders s
 WHERE s.status <> 'released';
COMMENT ON VIEW api.senders IS
  'Your senders (and, outside production, the shared simulator ones): "from" must be one of the active ones.';
REVOKE ALL ON api.senders FROM PUBLIC;
GRANT SELECT ON api.senders TO hermes_integrator, hermes_anon;
