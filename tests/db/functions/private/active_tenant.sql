-- private.active_tenant: the tenant an intake command acts for, or its refusal.
BEGIN;
\ir ../../helpers.psql
SELECT plan(4);

SELECT (pg_temp.new_tenant('Active Co') -> 'tenant' ->> 'id') AS t \gset
SELECT is((private.active_tenant(:'t')).id, :'t'::uuid, 'an active tenant: its row');
SELECT is(pg_temp.problem(format('SELECT private.active_tenant(%L)', gen_random_uuid())),
  'HM404 tenant_not_found', 'no such tenant: HM404');
UPDATE app.tenants SET status = 'suspended' WHERE id = :'t';
SELECT is(pg_temp.problem(format('SELECT private.active_tenant(%L)', :'t')),
  'HM403 tenant_suspended', 'a suspended tenant: HM403');
SELECT ok(NOT has_function_privilege('hermes_api', 'private.active_tenant(uuid)', 'EXECUTE'),
  'not callable by the API role');

SELECT * FROM finish();
ROLLBACK;
