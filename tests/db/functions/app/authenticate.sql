-- app.authenticate: bearer token -> key, tenant and one scope; records last use.
BEGIN;
\ir ../../helpers.psql
SELECT plan(21);

SELECT r -> 'tenant' ->> 'id' AS t, r -> 'api_key' ->> 'id' AS k, r -> 'api_key' ->> 'token' AS token,
       r -> 'api_key' ->> 'prefix' AS prefix
  FROM pg_temp.new_tenant('Auth Co') r \gset

SELECT is((SELECT last_used_at FROM app.api_keys WHERE id = :'k'), NULL, 'a new key was never used');
SELECT is(app.authenticate(:'token', 'messages:write'),
  jsonb_build_object('api_key_id', :'k', 'tenant_id', :'t', 'prefix', :'prefix',
                     'scopes', '["compliance:write", "imports:write", "keys:write", "messages:write", "read"]'::jsonb),
  'a live key with the scope: key, tenant, prefix and scopes');
SELECT is((SELECT last_used_at FROM app.api_keys WHERE id = :'k'), now(), 'last_used_at is updated');
UPDATE app.api_keys SET last_used_at = now() - interval '30 seconds' WHERE id = :'k';
SELECT ok(app.authenticate(:'token', 'read') IS NOT NULL, 'used again within the minute');
SELECT is((SELECT last_used_at FROM app.api_keys WHERE id = :'k'), now() - interval '30 seconds',
  'last_used_at is not rewritten within a minute');
UPDATE app.api_keys SET last_used_at = now() - interval '2 minutes' WHERE id = :'k';
SELECT ok(app.authenticate(:'token', 'read') IS NOT NULL, 'used again after two minutes');
SELECT is((SELECT last_used_at FROM app.api_keys WHERE id = :'k'), now(), 'last_used_at is updated again');

SELECT is(pg_temp.problem($$SELECT app.authenticate('not-a-key', 'read')$$), 'HM401 invalid_api_key',
  'an unknown token: HM401 invalid_api_key');
SELECT is(pg_temp.problem($$SELECT app.authenticate(NULL, 'read')$$), 'HM401 invalid_api_key', 'no token: HM401');
SELECT is(pg_temp.problem($$SELECT app.authenticate('', 'read')$$), 'HM401 invalid_api_key', 'an empty token: HM401');
SELECT is(pg_temp.problem(format('SELECT app.authenticate(%L, %L)', :'token' || ' ', 'read')), 'HM401 invalid_api_key',
  'the token must match exactly');
SELECT throws_ok(format('SELECT app.authenticate(%L, %L)', :'token', 'admin'), 'HM403',
  'This API key lacks the scope admin.', 'a missing scope: HM403 with the scope named');
SELECT is(pg_temp.problem(format('SELECT app.authenticate(%L, %L)', :'token', 'admin')), 'HM403 insufficient_scope',
  'DETAIL insufficient_scope');

SELECT k ->> 'token' AS reader, k ->> 'id' AS reader_id
  FROM pg_temp.new_key(:'t', 'reader', ARRAY['read'], now() + interval '1 day') k \gset
SELECT is(pg_temp.problem(format('SELECT app.authenticate(%L, %L)', :'reader', 'messages:write')), 'HM403 insufficient_scope',
  'a read-only key cannot write messages: HM403');
SELECT is(app.authenticate(:'reader', 'read') ->> 'api_key_id', :'reader_id', 'a key expiring later works');
UPDATE app.api_keys SET expires_at = now() WHERE id = :'reader_id';
SELECT is(pg_temp.problem(format('SELECT app.authenticate(%L, %L)', :'reader', 'read')), 'HM401 invalid_api_key',
  'an expired key: HM401');

SELECT app.create_admin_key('ops') AS admin \gset
SELECT is(app.authenticate((:'admin'::jsonb) ->> 'token', 'admin'),
  jsonb_build_object('api_key_id', (:'admin'::jsonb) ->> 'id', 'tenant_id', NULL, 'prefix', (:'admin'::jsonb) ->> 'prefix',
                     'scopes', '["admin"]'::jsonb),
  'a platform key authenticates for admin, without tenant');
SELECT is(pg_temp.problem(format('SELECT app.authenticate(%L, %L)', (:'admin'::jsonb) ->> 'token', 'read')),
  'HM403 insufficient_scope', 'a platform key has no tenant scopes');

UPDATE app.tenants SET status = 'suspended' WHERE id = :'t';
UPDATE app.api_keys SET last_used_at = now() - interval '1 hour' WHERE id = :'k';
SELECT is(pg_temp.problem(format('SELECT app.authenticate(%L, %L)', :'token', 'read')), 'HM403 tenant_suspended',
  'a key of a suspended tenant: HM403 tenant_suspended');
SELECT is((SELECT last_used_at FROM app.api_keys WHERE id = :'k'), now() - interval '1 hour',
  'a refused authentication does not record a use');

SELECT is(pg_temp.problem(format('SELECT app.authenticate(%L, NULL)', :'token')),
  'HM403 insufficient_scope', 'a NULL scope fails closed: HM403');

SELECT * FROM finish();
ROLLBACK;
