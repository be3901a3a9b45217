-- private.mint_api_key and private.api_key_json: a key's token exists only in the
-- result of the mint; the table keeps sha256(token), the JSON never shows secrets.
BEGIN;
\ir ../../helpers.psql
SELECT plan(28);

CREATE FUNCTION pg_temp.unb64url(p text) RETURNS bytea LANGUAGE sql AS $$
  SELECT decode(rpad(translate(p, '-_', '+/'), (length(p) + 3) / 4 * 4, '='), 'base64')
$$;
CREATE FUNCTION pg_temp.claims(p_token text) RETURNS jsonb LANGUAGE sql AS $$
  SELECT convert_from(pg_temp.unb64url(split_part(p_token, '.', 2)), 'UTF8')::jsonb
$$;

SELECT (pg_temp.new_tenant('Mint Co') -> 'tenant' ->> 'id') AS tenant_id \gset
SELECT k::text AS key, k ->> 'id' AS key_id, k ->> 'token' AS token, k ->> 'prefix' AS prefix
  FROM private.mint_api_key(:'tenant_id', '  reader  ', ARRAY['read', 'messages:write', 'read']) k \gset

-- The key and its token.
SELECT ok(:'prefix' ~ '^hk_test_[0-9a-f]{12}$', 'the prefix is hk_<environment>_<12 hex>');
SELECT is((SELECT secret_hash FROM app.api_keys WHERE id = :'key_id'), sha256(convert_to(:'token', 'UTF8')),
  'the table keeps sha256(token)');
SELECT is((SELECT scopes FROM app.api_keys WHERE id = :'key_id'), ARRAY['messages:write', 'read'],
  'scopes are stored sorted and without duplicates');
SELECT is((SELECT name FROM app.api_keys WHERE id = :'key_id'), 'reader', 'the name is trimmed');
SELECT is((SELECT tenant_id FROM app.api_keys WHERE id = :'key_id'), :'tenant_id'::uuid, 'the tenant is set');
SELECT ok(:'token' ~ '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$', 'the token is a JWT');
SELECT is(pg_temp.claims(:'token') - 'jti', jsonb_build_object('role', 'hermes_integrator', 'kid', :'prefix'),
  'claims: role hermes_integrator, kid = prefix, no exp when the key does not expire');
SELECT ok(pg_temp.claims(:'token') ->> 'jti' ~ '^[0-9a-f]{64}$', 'claims: a 64-hex-character jti');
SELECT is(split_part(:'token', '.', 3),
  private.base64url(private.hmac_sha256(
    convert_to((SELECT value FROM private.settings WHERE key = 'jwt_secret'), 'UTF8'),
    convert_to(split_part(:'token', '.', 1) || '.' || split_part(:'token', '.', 2), 'UTF8'))),
  'the token is signed with the jwt_secret (PostgREST accepts it)');
SELECT is((:'key')::jsonb - 'token', (SELECT private.api_key_json(k) FROM app.api_keys k WHERE id = :'key_id'),
  'the result is api_key_json plus the token');

-- Expiry and a second key.
SELECT k ->> 'token' AS token2, k ->> 'id' AS key2
  FROM private.mint_api_key(:'tenant_id', 'temp', ARRAY['read'], now() + interval '1 hour') k \gset
SELECT is((pg_temp.claims(:'token2') ->> 'exp')::bigint, floor(extract(epoch FROM now() + interval '1 hour'))::bigint,
  'an expiring key carries exp = expires_at');
SELECT is((SELECT expires_at FROM app.api_keys WHERE id = :'key2'), now() + interval '1 hour', 'expires_at is stored');
SELECT isnt(:'token2'::text, :'token'::text, 'each key has its own token');
SELECT isnt(pg_temp.claims(:'token2') ->> 'jti', pg_temp.claims(:'token') ->> 'jti', 'and its own jti');

-- Admin keys.
SELECT k ->> 'prefix' AS admin_prefix, k ->> 'id' AS admin_id FROM private.mint_api_key(NULL, 'ops', ARRAY['admin']) k \gset
SELECT ok(:'admin_prefix' ~ '^hk_admin_[0-9a-f]{12}$', 'a platform key has the prefix hk_admin_');
SELECT is((SELECT tenant_id FROM app.api_keys WHERE id = :'admin_id'), NULL, 'and no tenant');

-- api_key_json: no secrets, and the status.
SELECT is((SELECT array_agg(k ORDER BY k) FROM app.api_keys a, jsonb_object_keys(private.api_key_json(a)) k
            WHERE a.id = :'key_id'),
  ARRAY['created_at', 'expires_at', 'id', 'last_used_at', 'name', 'prefix', 'revoked_at', 'rotated_from',
        'scopes', 'status', 'tenant_id'],
  'api_key_json has exactly the public fields (no token, no secret_hash)');
SELECT results_eq($$
  WITH k AS (SELECT * FROM app.api_keys WHERE name = 'reader')
  SELECT private.api_key_json(k) ->> 'status' FROM k
  UNION ALL SELECT private.api_key_json((k.id, k.tenant_id, k.prefix, k.secret_hash, k.name, k.scopes, k.created_at,
                     now() - interval '1 second', NULL, NULL, NULL)::app.api_keys) ->> 'status' FROM k
  UNION ALL SELECT private.api_key_json((k.id, k.tenant_id, k.prefix, k.secret_hash, k.name, k.scopes, k.created_at,
                     now() + interval '1 day', now(), NULL, NULL)::app.api_keys) ->> 'status' FROM k
$$, $$VALUES ('active'), ('expired'), ('revoked')$$, 'status: active, expired, revoked');

-- Errors change nothing.
SELECT pg_temp.counts() AS counts_before \gset
SELECT is(pg_temp.problem(format($$SELECT private.mint_api_key(%L, NULL, ARRAY['read'])$$, :'tenant_id')),
  'HM422 invalid_name', 'no name: HM422 invalid_name');
SELECT is(pg_temp.problem(format($$SELECT private.mint_api_key(%L, '   ', ARRAY['read'])$$, :'tenant_id')),
  'HM422 invalid_name', 'blank name: HM422 invalid_name');
SELECT is(pg_temp.problem(format($$SELECT private.mint_api_key(%L, repeat('n', 201), ARRAY['read'])$$, :'tenant_id')),
  'HM422 invalid_name', '201-character name: HM422 invalid_name');
SELECT is(pg_temp.problem(format($$SELECT private.mint_api_key(%L, 'k', NULL)$$, :'tenant_id')),
  'HM422 invalid_scopes', 'NULL scopes: HM422 invalid_scopes');
SELECT is(pg_temp.problem(format($$SELECT private.mint_api_key(%L, 'k', '{}')$$, :'tenant_id')),
  'HM422 invalid_scopes', 'no scopes: HM422 invalid_scopes');
SELECT is(pg_temp.problem(format($$SELECT private.mint_api_key(%L, 'k', ARRAY['read', 'delete'])$$, :'tenant_id')),
  'HM422 invalid_scopes', 'an unknown scope: HM422 invalid_scopes');
SELECT is(pg_temp.problem(format($$SELECT private.mint_api_key(%L, 'k', ARRAY['read', 'admin'])$$, :'tenant_id')),
  'HM422 invalid_scopes', 'a tenant key with admin: HM422 invalid_scopes');
SELECT is(pg_temp.problem($$SELECT private.mint_api_key(NULL, 'k', ARRAY['read'])$$),
  'HM422 invalid_scopes', 'a platform key without admin: HM422 invalid_scopes');
SELECT is(pg_temp.problem(format($$SELECT private.mint_api_key(%L, 'k', ARRAY['read'], now())$$, :'tenant_id')),
  'HM422 invalid_expires_at', 'expires_at not in the future: HM422 invalid_expires_at');
SELECT is(pg_temp.counts(), :'counts_before'::jsonb, 'the refused mints changed nothing');

SELECT * FROM finish();
ROLLBACK;
