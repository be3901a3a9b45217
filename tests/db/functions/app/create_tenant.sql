-- app.create_tenant: a tenant and its first API key.
BEGIN;
\ir ../../helpers.psql
SELECT plan(18);

SELECT app.create_admin_key('ops') ->> 'id' AS admin \gset
SELECT pg_temp.counts() AS before \gset
SELECT app.create_tenant(:'admin', '  Acme  ', 'prod', '+1 (500) 555-0006') AS r \gset
SELECT (:'r'::jsonb) -> 'tenant' ->> 'id' AS t, (:'r'::jsonb) -> 'api_key' ->> 'id' AS k \gset

SELECT is(((:'r'::jsonb) -> 'tenant') - 'id' - 'created_at',
  '{"name": "Acme", "environment": "prod", "status": "active", "default_sms_from": "+15005550006"}'::jsonb,
  'the tenant: trimmed name, environment, active, normalised default sender');
SELECT results_eq(format('SELECT name, environment::text, status, default_sms_from, created_at FROM app.tenants WHERE id = %L', :'t'),
  $$VALUES ('Acme', 'prod', 'active', '+15005550006', now())$$, 'stored as returned');
SELECT is((:'r'::jsonb) -> 'api_key' -> 'scopes', '["keys:write", "messages:write", "read"]'::jsonb,
  'its first key has messages:write, keys:write and read');
SELECT is((:'r'::jsonb) -> 'api_key' ->> 'name', 'default', 'named default');
SELECT ok((:'r'::jsonb) -> 'api_key' ->> 'prefix' ~ '^hk_prod_[0-9a-f]{12}$', 'with the environment in its prefix');
SELECT is(app.authenticate((:'r'::jsonb) -> 'api_key' ->> 'token', 'messages:write') ->> 'tenant_id', :'t',
  'the token authenticates for the tenant');
SELECT is((pg_temp.counts() ->> 'tenants')::int - (:'before'::jsonb ->> 'tenants')::int, 1, 'one tenant');
SELECT is((pg_temp.counts() ->> 'api_keys')::int - (:'before'::jsonb ->> 'api_keys')::int, 1, 'one key');
SELECT results_eq($$SELECT tenant_id, api_key_id, action, target_id FROM app.audit_log
                     WHERE action IN ('tenant.create', 'api_key.create') AND api_key_id IS NOT NULL ORDER BY id$$,
  format($$VALUES (NULL::uuid, %L::uuid, 'tenant.create', %L), (%L::uuid, %L::uuid, 'api_key.create', %L)$$,
         :'admin', :'t', :'t', :'admin', :'k'),
  'audited twice: tenant.create (platform) and api_key.create (tenant), by the acting key');
SELECT is(app.create_tenant(NULL, 'Defaults') -> 'tenant' -> 'environment', '"sandbox"'::jsonb,
  'the default environment is sandbox');
SELECT is(app.create_tenant(NULL, 'No sender', 'test') -> 'tenant' -> 'default_sms_from', 'null'::jsonb,
  'a default sender is optional');

SELECT pg_temp.counts() AS before2 \gset
SELECT is(pg_temp.problem($$SELECT app.create_tenant(NULL, NULL)$$), 'HM422 invalid_name', 'no name: HM422 invalid_name');
SELECT is(pg_temp.problem($$SELECT app.create_tenant(NULL, '   ')$$), 'HM422 invalid_name', 'a blank name: invalid_name');
SELECT is(pg_temp.problem($$SELECT app.create_tenant(NULL, repeat('n', 201))$$), 'HM422 invalid_name',
  'a 201-character name: invalid_name');
SELECT is(pg_temp.problem($$SELECT app.create_tenant(NULL, 'X', 'staging')$$), 'HM422 invalid_environment',
  'an unknown environment: HM422 invalid_environment');
SELECT is(pg_temp.problem($$SELECT app.create_tenant(NULL, 'X', NULL)$$), 'HM422 invalid_environment',
  'a NULL environment: invalid_environment');
SELECT is(pg_temp.problem($$SELECT app.create_tenant(NULL, 'X', 'test', 'HERMES')$$), 'HM422 invalid_from',
  'a default sender that is not a phone number: HM422 invalid_from');
SELECT is(pg_temp.counts(), :'before2'::jsonb, 'the refusals wrote nothing');

SELECT * FROM finish();
ROLLBACK;
