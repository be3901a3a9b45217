-- private.check_api_key: the one token check behind private.authorize (commands) and
-- private.check_request (PostgREST). It raises nothing; it names the problem.
BEGIN;
\ir ../../helpers.psql
SELECT plan(10);

SELECT r -> 'tenant' ->> 'id' AS t, r -> 'api_key' ->> 'id' AS k, r -> 'api_key' ->> 'token' AS tok
  FROM pg_temp.new_tenant('Check Co') r \gset
SELECT k ->> 'id' AS admin, k ->> 'token' AS admin_tok FROM app.create_admin_key('ops') k \gset

SELECT results_eq(format($$SELECT api_key_id, tenant_id, scopes, problem_status, problem_code
                             FROM private.check_api_key(%L, 'read')$$, :'tok'),
  format($$VALUES (%L::uuid, %L::uuid, ARRAY['compliance:write', 'imports:write', 'keys:write', 'messages:write', 'providers:write', 'read'], NULL::int, NULL::text)$$, :'k', :'t'),
  'a live key with the scope: its id, tenant and scopes, no problem');
SELECT is((private.check_api_key(:'tok', 'admin')).problem_code, 'insufficient_scope', 'a scope it lacks');
SELECT is((private.check_api_key(:'tok', 'admin')).api_key_id::text, :'k', 'names the key even then (for audit)');
SELECT is((private.check_api_key(:'tok', NULL)).problem_code, 'insufficient_scope', 'no scope asked: refused');
SELECT results_eq($$SELECT api_key_id, problem_status, problem_code FROM private.check_api_key('nope', 'read')$$,
  $$VALUES (NULL::uuid, 401, 'invalid_api_key')$$, 'an unknown token: 401 invalid_api_key, no key named');
SELECT is((private.check_api_key(NULL, 'read')).problem_code, 'invalid_api_key', 'no token: invalid_api_key');
SELECT is((private.check_api_key(:'admin_tok', 'admin')).problem_code, NULL, 'a platform key (no tenant) with admin');
UPDATE app.api_keys SET expires_at = now() WHERE id = :'k';
SELECT is((private.check_api_key(:'tok', 'read')).problem_code, 'invalid_api_key', 'an expired key: invalid_api_key');
UPDATE app.api_keys SET expires_at = NULL WHERE id = :'k';
UPDATE app.tenants SET status = 'suspended' WHERE id = :'t';
SELECT is((private.check_api_key(:'tok', 'read')).problem_code, 'tenant_suspended', 'a suspended tenant');
UPDATE app.api_keys SET revoked_at = now() WHERE id = :'k';
SELECT is((private.check_api_key(:'tok', 'read')).problem_code, 'invalid_api_key',
  'a revoked key: invalid_api_key (before the tenant)');

SELECT * FROM finish();
ROLLBACK;
