-- private.check_request: PostgREST's pre-request function. (02_rls.sql covers it
-- together with the row-level security it feeds; this file covers its edge cases.)
BEGIN;
\ir ../../helpers.psql
-- pgTAP's set functions build temporary tables, and client roles have no TEMP (see
-- private.configure_database): grant it to the switched roles for this file only.
SELECT format('GRANT TEMPORARY ON DATABASE %I TO hermes_integrator, hermes_anon', current_database()) AS grant_temp \gset
:grant_temp;
SELECT plan(22);

SELECT r -> 'tenant' ->> 'id' AS tenant_id, r -> 'api_key' ->> 'token' AS token, r -> 'api_key' ->> 'id' AS key_id
  FROM pg_temp.new_tenant('Check Co') r \gset
SELECT app.create_admin_key('ops') ->> 'token' AS admin_token \gset
SELECT k ->> 'token' AS expiring_token, k ->> 'id' AS expiring_id
  FROM pg_temp.new_key(:'tenant_id', 'soon', ARRAY['read'], now() + interval '1 hour') k \gset

-- Runs check_request as p_role with the given request.headers (NULL: not set) and
-- returns 'ok <tenant> <key>' or 'SQLSTATE DETAIL'.
CREATE FUNCTION pg_temp.check(p_headers text, p_role text DEFAULT 'hermes_integrator') RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_result text;
BEGIN
  PERFORM set_config('request.headers', coalesce(p_headers, ''), true);
  EXECUTE format('SET LOCAL ROLE %I', p_role);
  BEGIN
    PERFORM private.check_request();
    v_result := 'ok ' || current_setting('hermes.tenant_id') || ' ' || current_setting('hermes.api_key_id');
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_result = RETURNED_SQLSTATE;
    v_result := v_result || ' ' || SQLERRM;
  END;
  RESET ROLE;
  RETURN v_result;
END
$$;
CREATE FUNCTION pg_temp.bearer(p_value text) RETURNS text LANGUAGE sql AS $$
  SELECT json_build_object('authorization', p_value)::text
$$;

SELECT is(pg_temp.check(pg_temp.bearer('Bearer ' || :'token')), 'ok ' || :'tenant_id' || ' ' || :'key_id',
  'a live key with read: tenant and key set');
SELECT is(pg_temp.check(pg_temp.bearer('bearer ' || :'token')), 'ok ' || :'tenant_id' || ' ' || :'key_id',
  'the scheme is case-insensitive (bearer)');
SELECT is(pg_temp.check(pg_temp.bearer('Bearer   ' || :'token' || '  ')), 'ok ' || :'tenant_id' || ' ' || :'key_id',
  'extra blanks around the token are fine');
SELECT is(pg_temp.check(pg_temp.bearer('Bearer ' || :'token'), 'hermes_anon'), 'ok ' || :'tenant_id' || ' ' || :'key_id',
  'hermes_anon may run it too');
SELECT is(pg_temp.check(NULL), 'ok  ', 'request.headers not set: anonymous (tenant and key empty)');
SELECT is(pg_temp.check('{}'), 'ok  ', 'no Authorization header: anonymous');
SELECT is(pg_temp.check(pg_temp.bearer('')), 'ok  ', 'an empty Authorization header: anonymous');
SELECT set_config('hermes.tenant_id', :'tenant_id', true) IS NOT NULL AS stale \gset
SELECT is(pg_temp.check('{}'), 'ok  ', 'a tenant left in the transaction is cleared');
SELECT is(pg_temp.check(pg_temp.bearer('Bearer nope')), 'PT401 Invalid, revoked or expired API key',
  'an unknown token: PT401');
SELECT is(pg_temp.check(pg_temp.bearer('Basic ' || :'token')), 'PT401 Invalid, revoked or expired API key',
  'another scheme: PT401');
SELECT is(pg_temp.check(pg_temp.bearer(:'token')), 'PT401 Invalid, revoked or expired API key',
  'a token without a scheme: PT401');
SELECT is(pg_temp.check(pg_temp.bearer('Bearer ' || :'token' || ' extra')), 'PT401 Invalid, revoked or expired API key',
  'trailing garbage: PT401');
SELECT is(pg_temp.check(pg_temp.bearer('Bearer ' || :'expiring_token')), 'ok ' || :'tenant_id' || ' ' || :'expiring_id',
  'a key expiring later works');
UPDATE app.api_keys SET expires_at = now() WHERE id = :'expiring_id';
SELECT is(pg_temp.check(pg_temp.bearer('Bearer ' || :'expiring_token')), 'PT401 Invalid, revoked or expired API key',
  'an expired key: PT401');
SELECT is(pg_temp.check(pg_temp.bearer('Bearer ' || :'admin_token')), 'PT403 This API key may not read',
  'a platform (admin) key: PT403');
SELECT is(pg_temp.check(pg_temp.bearer('Bearer ' || (pg_temp.new_key(:'tenant_id', 'w', ARRAY['keys:write']) ->> 'token'))),
  'PT403 This API key may not read', 'a key without read: PT403');
UPDATE app.api_keys SET revoked_at = now() WHERE id = :'key_id';  -- revoked
SELECT is(pg_temp.check(pg_temp.bearer('Bearer ' || :'token')), 'PT401 Invalid, revoked or expired API key',
  'a revoked key: PT401');

-- DETAIL and HINT, for PostgREST's error body.
SELECT set_config('request.headers', pg_temp.bearer('Bearer ' || :'token'), true) IS NOT NULL AS h \gset
SELECT is(pg_temp.problem('SELECT private.check_request()'), 'PT401 invalid_api_key', 'PT401 DETAIL invalid_api_key');
SELECT set_config('request.headers', pg_temp.bearer('Bearer ' || :'admin_token'), true) IS NOT NULL AS h \gset
SELECT is(pg_temp.problem('SELECT private.check_request()'), 'PT403 insufficient_scope', 'PT403 DETAIL insufficient_scope');
SELECT k ->> 'token' AS token2 FROM pg_temp.new_key(:'tenant_id', 'r2', ARRAY['read']) k \gset
UPDATE app.tenants SET status = 'suspended' WHERE id = :'tenant_id';
SELECT set_config('request.headers', pg_temp.bearer('Bearer ' || :'token2'), true) IS NOT NULL AS h \gset
SELECT is(pg_temp.problem('SELECT private.check_request()'), 'PT403 tenant_suspended', 'PT403 DETAIL tenant_suspended');
SELECT is(pg_temp.check(pg_temp.bearer('Bearer ' || :'token2')), 'PT403 Tenant is suspended',
  'a suspended tenant: PT403');
SELECT ok((SELECT prosecdef FROM pg_proc WHERE oid = 'private.check_request()'::regprocedure),
  'check_request is SECURITY DEFINER (the PostgREST roles cannot read app.api_keys)');

SELECT * FROM finish();
ROLLBACK;
