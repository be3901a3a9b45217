-- api.suppressions: the addresses on your suppression lists now (do_not_contact,
-- litigator, hard_bounce, complaint; erasure tombstones show without an address).
CREATE OR REPLACE VIEW api.suppressions WITH (security_invoker = true) AS
SELECT s.address,
       s.list,
       s.reason,
       s.added_at
  FROM app.suppressions s;
COMMENT ON VIEW api.suppressions IS 'Your suppressed addresses, per list; Hermes never messages them.';
REVOKE ALL ON api.suppressions FROM PUBLIC;
GRANT SELECT ON api.suppressions TO hermes_integrator, hermes_anon;
