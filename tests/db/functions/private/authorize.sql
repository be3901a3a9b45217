-- private.authorize: what every command function runs first. The problems it raises,
-- the principal it returns, and the throttled last-use stamp.
BEGIN;
\ir ../../helpers.psql
SELECT plan(9);

SELECT r -> 'tenant' ->> 'id' AS t, r -> 'api_key' ->> 'id' AS k, r -> 'api_key' ->> 'token' AS tok
  FROM pg_temp.new_tenant('Authz Co') r \gset
SELECT k ->> 'id' AS admin, k ->> 'token' AS admin_tok FROM app.create_admin_key('ops') k \gset

SELECT is(private.authorize(:'tok', 'messages:write'),
  ROW(:'k'::uuid, :'t'::uuid, (SELECT prefix FROM app.api_keys WHERE id = :'k'),
      ARRAY['compliance:write', 'imports:write', 'keys:write', 'messages:write', 'providers:write', 'read'])::private.principal,
  'a live tenant key with the scope: its id, tenant, prefix and scopes');
SELECT is((SELECT last_used_at FROM app.api_keys WHERE id = :'k'), now(), 'last use recorded');
UPDATE app.api_keys SET last_used_at = now() - interval '30 seconds' WHERE id = :'k';
SELECT (private.authorize(:'tok', 'read')).api_key_id IS NOT NULL AS again \gset
SELECT is((SELECT last_used_at FROM app.api_keys WHERE id = :'k'), now() - interval '30 seconds',
  'not again within a minute (a busy key is not a write per request)');
SELECT is(pg_temp.problem(format('SELECT private.authorize(%L, %L)', 'nope', 'read')), 'HM401 invalid_api_key',
  'an unknown token: HM401 invalid_api_key');
SELECT is(pg_temp.problem_hint(format('SELECT private.authorize(%L, %L)', 'nope', 'read')),
  'Send a live key as "Authorization: Bearer <key>".', 'with a hint');
SELECT is(pg_temp.problem(format('SELECT private.authorize(%L, %L)', :'tok', 'admin')), 'HM403 insufficient_scope',
  'a scope the key lacks: HM403 insufficient_scope');
SELECT is(pg_temp.problem(format('SELECT private.authorize(%L, %L)', :'admin_tok', 'admin')),
  'HM403 tenant_key_required', 'a platform key where a tenant key is needed: HM403 tenant_key_required');
SELECT is((private.authorize(:'admin_tok', 'admin', false)).tenant_id, NULL,
  'with p_tenant false a platform key passes, with no tenant');
UPDATE app.tenants SET status = 'suspended' WHERE id = :'t';
SELECT is(pg_temp.problem(format('SELECT private.authorize(%L, %L)', :'tok', 'read')), 'HM403 tenant_suspended',
  'a suspended tenant: HM403 tenant_suspended');

SELECT * FROM finish();
ROLLBACK;
