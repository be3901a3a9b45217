-- api.provider_accounts: your provider accounts -- which exist, never their credentials.
CREATE OR REPLACE VIEW api.provider_accounts WITH (security_invoker = true) AS
SELECT a.id, a.provider, a.name, a.disabled_at IS NULL AS active, a.created_at, a.updated_at, a.disabled_at
  FROM app.provider_accounts a;
COMMENT ON VIEW api.provider_accounts IS
  'Your own provider accounts (set with POST /v1/provider-accounts); credentials are sealed and never shown.';
GRANT SELECT ON api.provider_accounts TO hermes_integrator, hermes_anon;
