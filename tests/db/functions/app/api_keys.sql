-- app.create_api_key, app.list_api_keys, app.rotate_api_key, app.revoke_api_key.
BEGIN;
\ir ../../helpers.psql
SELECT plan(45);

SELECT r -> 'tenant' ->> 'id' AS t, r -> 'api_key' ->> 'id' AS k0, r -> 'api_key' ->> 'token' AS token0
  FROM pg_temp.new_tenant('Keys Co') r \gset
SELECT r -> 'tenant' ->> 'id' AS t_other, r -> 'api_key' ->> 'id' AS k_other FROM pg_temp.new_tenant('Other Co') r \gset

-- create_api_key ---------------------------------------------------------------------
SELECT app.create_api_key(:'t', :'k0', 'ci', ARRAY['messages:write', 'read']) AS created \gset
SELECT (:'created'::jsonb) ->> 'id' AS k1, (:'created'::jsonb) ->> 'token' AS token1 \gset
SELECT ok((:'created'::jsonb) ? 'token', 'create returns the token (the only time)');
SELECT is((:'created'::jsonb) -> 'scopes', '["messages:write", "read"]'::jsonb, 'with the scopes');
SELECT is((:'created'::jsonb) ->> 'tenant_id', :'t', 'for the tenant');
SELECT is((:'created'::jsonb) ->> 'status', 'active', 'active');
SELECT is(app.authenticate(:'token1', 'read') ->> 'api_key_id', :'k1', 'the new token authenticates');
SELECT results_eq(format($$SELECT tenant_id, api_key_id, action, target_id, details FROM app.audit_log
                           WHERE action = 'api_key.create' AND target_id = %L$$, :'k1'),
  format($$VALUES (%L::uuid, %L::uuid, 'api_key.create', %L, '{"scopes": ["messages:write", "read"]}'::jsonb)$$,
         :'t', :'k0', :'k1'),
  'audited: api_key.create by the acting key');
SELECT pg_temp.counts() AS before \gset
SELECT is(pg_temp.problem($$SELECT app.create_api_key(NULL, NULL, 'k', ARRAY['read'])$$), 'HM422 tenant_required',
  'no tenant: HM422 tenant_required');
SELECT is(pg_temp.problem(format($$SELECT app.create_api_key(%L, NULL, 'k', ARRAY['admin'])$$, :'t')), 'HM422 invalid_scopes',
  'a tenant key cannot get the admin scope: HM422 invalid_scopes');
SELECT is(pg_temp.problem(format($$SELECT app.create_api_key(%L, NULL, 'k', ARRAY['read', 'admin'])$$, :'t')), 'HM422 invalid_scopes',
  'nor admin among others');
SELECT is(pg_temp.problem(format($$SELECT app.create_api_key(%L, NULL, 'k', ARRAY['write'])$$, :'t')), 'HM422 invalid_scopes',
  'an unknown scope: HM422 invalid_scopes');
SELECT is(pg_temp.problem(format($$SELECT app.create_api_key(%L, NULL, '', ARRAY['read'])$$, :'t')), 'HM422 invalid_name',
  'an empty name: HM422 invalid_name');
SELECT is(pg_temp.problem(format($$SELECT app.create_api_key(%L, NULL, 'k', ARRAY['read'], now() - interval '1 s')$$, :'t')),
  'HM422 invalid_expires_at', 'an expiry in the past: HM422 invalid_expires_at');
SELECT is(pg_temp.problem(format($$SELECT app.create_api_key(%L, NULL, 'k', ARRAY['read'])$$, gen_random_uuid())),
  'HM404 tenant_not_found', 'a key for an unknown tenant: HM404 tenant_not_found');
SELECT is(pg_temp.counts(), :'before'::jsonb, 'the refusals wrote nothing');

-- list_api_keys ----------------------------------------------------------------------
SELECT app.list_api_keys(:'t') AS list \gset
SELECT is(jsonb_array_length(:'list'::jsonb), 2, 'the tenant has two keys');
SELECT set_eq(format($$SELECT e ->> 'id' FROM jsonb_array_elements(%L::jsonb) e$$, :'list'), ARRAY[:'k0', :'k1'],
  'its own keys (ordered by created_at, then id: both were made in this transaction)');
SELECT is_empty(format($$SELECT e FROM jsonb_array_elements(%L::jsonb) e WHERE e ? 'token' OR e ? 'secret_hash'$$, :'list'),
  'no key in the list has a token or a hash');
SELECT ok(position(:'token0' IN :'list') = 0 AND position(:'token1' IN :'list') = 0
          AND position(split_part(:'token1', '.', 3) IN :'list') = 0,
  'no token or signature appears anywhere in the list');
SELECT ok(NOT EXISTS (SELECT 1 FROM app.api_keys k WHERE position(encode(k.secret_hash, 'hex') IN :'list') > 0
                                                     OR position(encode(k.secret_hash, 'base64') IN :'list') > 0),
  'no secret hash appears anywhere in the list');
SELECT is((SELECT e FROM jsonb_array_elements(:'list'::jsonb) e WHERE e ->> 'id' = :'k1'),
  (SELECT private.api_key_json(k) FROM app.api_keys k WHERE id = :'k1'), 'each element is api_key_json');
SELECT is(app.list_api_keys(gen_random_uuid()), '[]'::jsonb, 'an unknown tenant: []');
SELECT is(app.list_api_keys(NULL), '[]'::jsonb, 'no tenant (platform keys are not listed): []');
SELECT is(jsonb_array_length(app.list_api_keys(:'t_other')), 1, 'the other tenant sees only its key');

-- rotate_api_key ---------------------------------------------------------------------
SELECT app.rotate_api_key(:'t', :'k0', :'k1', interval '2 hours') AS rotated \gset
SELECT (:'rotated'::jsonb) ->> 'id' AS k2, (:'rotated'::jsonb) ->> 'token' AS token2 \gset
SELECT is((:'rotated'::jsonb) ->> 'rotated_from', :'k1', 'the new key names its predecessor');
SELECT is((:'rotated'::jsonb) -> 'scopes', '["messages:write", "read"]'::jsonb, 'with the same scopes');
SELECT is((:'rotated'::jsonb) ->> 'name', 'ci', 'and name');
SELECT is((:'rotated'::jsonb) ->> 'expires_at', NULL, 'the new key does not expire');
SELECT is((SELECT expires_at FROM app.api_keys WHERE id = :'k1'), now() + interval '2 hours',
  'the old key expires at now() + overlap');
SELECT is(app.authenticate(:'token2', 'messages:write') ->> 'api_key_id', :'k2', 'the new key works in app.authenticate');
SELECT is(app.authenticate(:'token1', 'messages:write') ->> 'api_key_id', :'k1', 'the old key still works during the overlap');
SELECT results_eq(format($$SELECT api_key_id, target_id, details FROM app.audit_log WHERE action = 'api_key.rotate'$$),
  format($$VALUES (%L::uuid, %L, jsonb_build_object('new_key_id', %L, 'overlap', '02:00:00'))$$, :'k0', :'k1', :'k2'),
  'audited: api_key.rotate with the new key and the overlap');
SELECT app.rotate_api_key(:'t', NULL, :'k1', interval '5 days') IS NOT NULL AS r \gset
SELECT is((SELECT expires_at FROM app.api_keys WHERE id = :'k1'), now() + interval '2 hours',
  'rotating again never extends the old key''s life');
SELECT app.rotate_api_key(:'t', NULL, :'k2', interval '0') ->> 'token' AS token3 \gset
SELECT is(pg_temp.problem(format('SELECT app.authenticate(%L, %L)', :'token2', 'read')), 'HM401 invalid_api_key',
  'an overlap of 0 expires the old key at once');
SELECT is(pg_temp.problem(format('SELECT app.rotate_api_key(%L, NULL, %L)', :'t', :'k2')), 'HM409 api_key_not_active',
  'an expired key cannot be rotated: HM409 api_key_not_active');
SELECT is(pg_temp.problem(format('SELECT app.rotate_api_key(%L, NULL, %L, NULL)', :'t', :'k0')), 'HM422 invalid_overlap',
  'NULL overlap: HM422 invalid_overlap');
SELECT is(pg_temp.problem(format($$SELECT app.rotate_api_key(%L, NULL, %L, '-1 second')$$, :'t', :'k0')), 'HM422 invalid_overlap',
  'negative overlap: HM422 invalid_overlap');
SELECT is(pg_temp.problem(format($$SELECT app.rotate_api_key(%L, NULL, %L, '31 days')$$, :'t', :'k0')), 'HM422 invalid_overlap',
  'an overlap over 30 days: HM422 invalid_overlap');
SELECT is(pg_temp.problem(format('SELECT app.rotate_api_key(%L, NULL, %L)', :'t', :'k_other')), 'HM404 api_key_not_found',
  'another tenant''s key: HM404 api_key_not_found');

-- revoke_api_key ---------------------------------------------------------------------
SELECT is(app.revoke_api_key(:'t', :'k0', :'k0') ->> 'status', 'revoked', 'revoke returns the key, revoked');
SELECT is((SELECT revoked_at FROM app.api_keys WHERE id = :'k0'), now(), 'revoked_at is now()');
SELECT is(pg_temp.problem(format('SELECT app.authenticate(%L, %L)', :'token0', 'read')), 'HM401 invalid_api_key',
  'a revoked key: HM401 at once');
UPDATE app.api_keys SET revoked_at = now() - interval '1 day' WHERE id = :'k0';
SELECT is((app.revoke_api_key(:'t', NULL, :'k0') ->> 'revoked_at')::timestamptz, now() - interval '1 day',
  'revoking again is idempotent: the first revoked_at stays');
SELECT is(pg_temp.problem(format('SELECT app.revoke_api_key(%L, NULL, %L)', :'t', :'k_other')), 'HM404 api_key_not_found',
  'another tenant''s key: HM404 api_key_not_found');
SELECT is(pg_temp.problem(format('SELECT app.rotate_api_key(%L, NULL, %L)', :'t', :'k0')), 'HM409 api_key_not_active',
  'a revoked key cannot be rotated: HM409');
SELECT is((SELECT count(*)::int FROM app.audit_log WHERE action = 'api_key.revoke' AND target_id = :'k0'), 2,
  'each revoke is audited');

SELECT * FROM finish();
ROLLBACK;
