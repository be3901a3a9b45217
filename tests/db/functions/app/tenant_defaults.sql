-- app.tenant_defaults: the key's tenant's default country, for the scope to come.
BEGIN;
\ir ../../helpers.psql
SELECT plan(3);

SELECT pg_temp.new_tenant('Defaults Co') AS r \gset
SELECT (:'r'::jsonb) -> 'tenant' ->> 'id' AS t, (:'r'::jsonb) -> 'api_key' ->> 'token' AS token \gset
SELECT is(app.tenant_defaults(:'token', 'messages:write'), '{"default_country": "US"}'::jsonb, 'US by default');
UPDATE app.tenants SET default_country = 'GB' WHERE id = :'t';
SELECT is(app.tenant_defaults(:'token', 'compliance:write'), '{"default_country": "GB"}'::jsonb, 'the tenant''s');
SELECT is(pg_temp.problem(format($$SELECT app.tenant_defaults(%L, 'admin')$$, :'token')), 'HM403 insufficient_scope',
  'only for a scope the key has');

SELECT * FROM finish();
ROLLBACK;
