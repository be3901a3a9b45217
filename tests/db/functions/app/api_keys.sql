-- app.create_api_key, app.list_api_keys, app.rotate_api_key, app.revoke_api_key: each
-- takes the acting key's token (keys:write) and acts for its tenant; no key hands out
-- scopes it lacks.
BEGIN;
\ir ../../helpers.psql
SELECT plan(60);

SELECT r -> 'tenant' ->> 'id' AS t, r -> 'api_key' ->> 'id' AS k0, r -> 'api_key' ->> 'token' AS token0
  FROM pg_temp.new_tenant('Keys Co') r \gset
SELECT r -> 'tenant' ->> 'id' AS t_other, r -> 'api_key' ->> 'id' AS k_other, r -> 'api_key' ->> 'token' AS token_other
  FROM pg_temp.new_tenant('Other Co') r \gset

-- create_api_key ---------------------------------------------------------------------
SELECT app.create_api_key(:'token0', 'ci', ARRAY['messages:write', 'read']) AS created \gset
SELECT (:'created'::jsonb) ->> 'id' AS k1, (:'created'::jsonb) ->> 'token' AS token1 \gset
SELECT ok((:'created'::jsonb) ? 'token', 'create returns the token (the only time)');
SELECT is((:'created'::jsonb) -> 'scopes', '["messages:write", "read"]'::jsonb, 'with the scopes');
SELECT is((:'created'::jsonb) ->> 'tenant_id', :'t', 'for the tenant');
SELECT is((:'created'::jsonb) ->> 'status', 'active', 'active');
SELECT is((private.authorize(:'token1', 'read')).api_key_id::text, :'k1', 'the new token authenticates');
SELECT results_eq(format($$SELECT tenant_id, api_key_id, action, target_id, details FROM app.audit_log
                           WHERE action = 'api_key.create' AND target_id = %L$$, :'k1'),
  format($$VALUES (%L::uuid, %L::uuid, 'api_key.create', %L, '{"scopes": ["messages:write", "read"]}'::jsonb)$$,
         :'t', :'k0', :'k1'),
  'audited: api_key.create by the acting key');
SELECT pg_temp.counts() AS before \gset
SELECT is(pg_temp.problem($$SELECT app.create_api_key(NULL, 'k', ARRAY['read'])$$), 'HM401 invalid_api_key',
  'no token: HM401 invalid_api_key');
SELECT is(pg_temp.problem(format($$SELECT app.create_api_key(%L, 'k', ARRAY['admin'])$$, :'token0')), 'HM403 scope_escalation',
  'a tenant key cannot hand out the admin scope: HM403 scope_escalation');
SELECT is(pg_temp.problem(format($$SELECT app.create_api_key(%L, 'k', ARRAY['read', 'admin'])$$, :'token0')), 'HM403 scope_escalation',
  'nor admin among others');
SELECT is(pg_temp.problem($$SELECT private.mint_api_key(gen_random_uuid(), 'k', ARRAY['admin'])$$), 'HM422 invalid_scopes',
  'and a tenant key can never hold admin, however it is minted: HM422 invalid_scopes');
SELECT is(pg_temp.problem(format($$SELECT app.create_api_key(%L, 'k', ARRAY['write'])$$, :'token0')), 'HM422 invalid_scopes',
  'an unknown scope: HM422 invalid_scopes');
SELECT is(pg_temp.problem(format($$SELECT app.create_api_key(%L, '', ARRAY['read'])$$, :'token0')), 'HM422 invalid_name',
  'an empty name: HM422 invalid_name');
SELECT is(pg_temp.problem(format($$SELECT app.create_api_key(%L, 'k', ARRAY['read'], now() - interval '1 s')$$, :'token0')),
  'HM422 invalid_expires_at', 'an expiry in the past: HM422 invalid_expires_at');
SELECT is(pg_temp.problem(format($$SELECT app.create_api_key(%L, 'k', ARRAY['read'])$$, :'token1')),
  'HM403 insufficient_scope', 'a key without keys:write cannot create keys: HM403 insufficient_scope');
SELECT is(pg_temp.counts(), :'before'::jsonb, 'the refusals wrote nothing');

-- list_api_keys ----------------------------------------------------------------------
SELECT app.list_api_keys(:'token0') AS list \gset
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
SELECT is(pg_temp.problem($$SELECT app.list_api_keys('nope')$$), 'HM401 invalid_api_key', 'an unknown token: HM401');
SELECT is(pg_temp.problem(format('SELECT app.list_api_keys(%L)', :'token1')), 'HM403 insufficient_scope',
  'a key without keys:write cannot list keys');
SELECT is(jsonb_array_length(app.list_api_keys(:'token_other')), 1, 'the other tenant sees only its key');

-- rotate_api_key ---------------------------------------------------------------------
SELECT app.rotate_api_key(:'token0', :'k1', interval '2 hours') AS rotated \gset
SELECT (:'rotated'::jsonb) ->> 'id' AS k2, (:'rotated'::jsonb) ->> 'token' AS token2 \gset
SELECT is((:'rotated'::jsonb) ->> 'rotated_from', :'k1', 'the new key names its predecessor');
SELECT is((:'rotated'::jsonb) -> 'scopes', '["messages:write", "read"]'::jsonb, 'with the same scopes');
SELECT is((:'rotated'::jsonb) ->> 'name', 'ci', 'and name');
SELECT is((:'rotated'::jsonb) ->> 'expires_at', NULL, 'and expiry (k1 had none)');
SELECT is((SELECT expires_at FROM app.api_keys WHERE id = :'k1'), now() + interval '2 hours',
  'the old key expires at now() + overlap');
SELECT is((private.authorize(:'token2', 'messages:write')).api_key_id::text, :'k2', 'the new key is authorized');
SELECT is((private.authorize(:'token1', 'messages:write')).api_key_id::text, :'k1', 'the old key still works during the overlap');
SELECT results_eq(format($$SELECT api_key_id, target_id, details FROM app.audit_log WHERE action = 'api_key.rotate'$$),
  format($$VALUES (%L::uuid, %L, jsonb_build_object('new_key_id', %L, 'overlap', '02:00:00'))$$, :'k0', :'k1', :'k2'),
  'audited: api_key.rotate with the new key and the overlap');
SELECT app.rotate_api_key(:'token0', :'k1', interval '5 days') IS NOT NULL AS r \gset
SELECT is((SELECT expires_at FROM app.api_keys WHERE id = :'k1'), now() + interval '2 hours',
  'rotating again never extends the old key''s life');
SELECT app.rotate_api_key(:'token0', :'k2', interval '0') ->> 'token' AS token3 \gset
SELECT is(pg_temp.problem(format('SELECT private.authorize(%L, %L)', :'token2', 'read')), 'HM401 invalid_api_key',
  'an overlap of 0 expires the old key at once');
SELECT is(pg_temp.problem(format('SELECT app.rotate_api_key(%L, %L)', :'token0', :'k2')), 'HM409 api_key_not_active',
  'an expired key cannot be rotated: HM409 api_key_not_active');
SELECT is(pg_temp.problem(format('SELECT app.rotate_api_key(%L, %L, NULL)', :'token0', :'k0')), 'HM422 invalid_overlap',
  'NULL overlap: HM422 invalid_overlap');
SELECT is(pg_temp.problem(format($$SELECT app.rotate_api_key(%L, %L, '-1 second')$$, :'token0', :'k0')), 'HM422 invalid_overlap',
  'negative overlap: HM422 invalid_overlap');
SELECT is(pg_temp.problem(format($$SELECT app.rotate_api_key(%L, %L, '31 days')$$, :'token0', :'k0')), 'HM422 invalid_overlap',
  'an overlap over 30 days: HM422 invalid_overlap');
SELECT is(pg_temp.problem(format('SELECT app.rotate_api_key(%L, %L)', :'token0', :'k_other')), 'HM404 api_key_not_found',
  'another tenant''s key: HM404 api_key_not_found');

-- revoke_api_key ---------------------------------------------------------------------
SELECT is(app.revoke_api_key(:'token0', :'k0') ->> 'status', 'revoked', 'a key can revoke itself; revoke returns it, revoked');
SELECT is((SELECT revoked_at FROM app.api_keys WHERE id = :'k0'), now(), 'revoked_at is now()');
SELECT is(pg_temp.problem(format('SELECT private.authorize(%L, %L)', :'token0', 'read')), 'HM401 invalid_api_key',
  'a revoked key: HM401 at once');
SELECT pg_temp.new_key(:'t', 'admin2', (SELECT scopes FROM app.api_keys WHERE id = :'k0')) ->> 'token' AS token_keys \gset
UPDATE app.api_keys SET revoked_at = now() - interval '1 day' WHERE id = :'k0';
SELECT is((app.revoke_api_key(:'token_keys', :'k0') ->> 'revoked_at')::timestamptz, now() - interval '1 day',
  'revoking again is idempotent: the first revoked_at stays');
SELECT is(pg_temp.problem(format('SELECT app.revoke_api_key(%L, %L)', :'token0', :'k1')), 'HM401 invalid_api_key',
  'a revoked key can do nothing more: HM401');
SELECT is(pg_temp.problem(format('SELECT app.revoke_api_key(%L, %L)', :'token_keys', :'k_other')), 'HM404 api_key_not_found',
  'another tenant''s key: HM404 api_key_not_found');
SELECT is(pg_temp.problem(format('SELECT app.rotate_api_key(%L, %L)', :'token_keys', :'k0')), 'HM409 api_key_not_active',
  'a revoked key cannot be rotated: HM409');
SELECT is((SELECT count(*)::int FROM app.audit_log WHERE action = 'api_key.revoke' AND target_id = :'k0'), 2,
  'each revoke is audited');

-- no scope escalation ---------------------------------------------------------------
-- A key with keys:write but not messages:write (nor read) may manage keys, but only
-- hand out what it has.
SELECT pg_temp.new_key(:'t', 'keys only', ARRAY['keys:write']) AS ko \gset
SELECT (:'ko'::jsonb) ->> 'token' AS token_ko \gset
SELECT pg_temp.new_key(:'t', 'sender', ARRAY['messages:write', 'read']) ->> 'id' AS k_sender \gset
SELECT pg_temp.counts() AS before_esc \gset
SELECT is(pg_temp.problem(format($$SELECT app.create_api_key(%L, 'wider', ARRAY['keys:write', 'messages:write'])$$, :'token_ko')),
  'HM403 scope_escalation', 'creating a key with a scope the actor lacks: HM403 scope_escalation');
SELECT is(pg_temp.problem_hint(format($$SELECT app.create_api_key(%L, 'wider', ARRAY['read'])$$, :'token_ko')),
  'A key can only create, rotate or revoke keys with scopes it has itself.', 'with a hint');
SELECT is(pg_temp.problem(format('SELECT app.rotate_api_key(%L, %L)', :'token_ko', :'k_sender')), 'HM403 scope_escalation',
  'rotating a key with scopes the actor lacks: HM403 scope_escalation (the successor would have them)');
SELECT is(pg_temp.counts(), :'before_esc'::jsonb, 'the refused escalations wrote nothing');
SELECT is(app.create_api_key(:'token_ko', 'same', ARRAY['keys:write']) -> 'scopes', '["keys:write"]'::jsonb,
  'a subset of its own scopes is allowed');
-- Rotation keeps the rotated key's scopes and expiry.
SELECT pg_temp.new_key(:'t', 'expiring', ARRAY['keys:write'], now() + interval '10 days') ->> 'id' AS k_exp \gset
SELECT app.rotate_api_key(:'token_ko', :'k_exp', interval '1 hour') AS rot2 \gset
SELECT is(((:'rot2'::jsonb) ->> 'expires_at')::timestamptz, now() + interval '10 days',
  'the successor keeps the rotated key''s expiry (not a longer life)');
SELECT is((:'rot2'::jsonb) -> 'scopes', '["keys:write"]'::jsonb, 'and its scopes');
SELECT is((SELECT expires_at FROM app.api_keys WHERE id = :'k_exp'), now() + interval '1 hour',
  'the rotated key expires after the overlap');
SELECT is((SELECT api_key_id::text FROM app.audit_log WHERE action = 'api_key.rotate' AND target_id = :'k_exp'),
  (:'ko'::jsonb) ->> 'id', 'audited with the acting key (taken from the token, not passed in)');
-- Revoking follows the same rule: a key revokes only keys whose scopes it holds itself
-- (else a keys:write key could cut off the tenant's wider keys).
SELECT pg_temp.new_key(:'t', 'wide', ARRAY['keys:write', 'messages:write', 'read']) ->> 'id' AS k_wide \gset
SELECT is(pg_temp.problem(format('SELECT app.revoke_api_key(%L, %L)', :'token_ko', :'k_wide')), 'HM403 scope_escalation',
  'revoking a key with scopes the actor lacks: HM403 scope_escalation');
SELECT is((SELECT revoked_at FROM app.api_keys WHERE id = :'k_wide'), NULL, 'and the wider key stays live');
SELECT is(pg_temp.problem_hint(format('SELECT app.revoke_api_key(%L, %L)', :'token_ko', :'k_wide')),
  'A key can only create, rotate or revoke keys with scopes it has itself.', 'with the same hint');
SELECT pg_temp.new_key(:'t', 'narrow', ARRAY['keys:write']) ->> 'id' AS k_narrow \gset
SELECT is(app.revoke_api_key(:'token_ko', :'k_narrow') ->> 'status', 'revoked', 'a key with a subset of its scopes: revoked');

SELECT * FROM finish();
ROLLBACK;
