-- PostgREST's pre-request function (db-pre-request). An integrator reads with the
-- same "Authorization: Bearer <api key>" it uses for the command API. PostgREST has
-- already verified the token's HS256 signature and switched to its role; here the
-- token must name a live tenant key with the read scope (private.check_api_key, the
-- same check the command functions run), whose tenant becomes the
-- transaction-local hermes.tenant_id that every row-level-security policy reads.
-- No header: anonymous, sees no rows. A revoked, expired or unknown key: 401.
CREATE OR REPLACE FUNCTION private.check_request()
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_header text := nullif(current_setting('request.headers', true), '')::json ->> 'authorization';
  v_token  text;
  v_key    record;
BEGIN
  PERFORM set_config('hermes.tenant_id', '', true);
  PERFORM set_config('hermes.api_key_id', '', true);
  IF v_header IS NULL OR v_header = '' THEN
    RETURN;
  END IF;
  v_token := substring(v_header FROM '^[Bb]earer\s+(\S+)\s*$');

  v_key := private.check_api_key(v_token, 'read');
  IF v_key.problem_code = 'invalid_api_key' THEN
    RAISE EXCEPTION USING ERRCODE = 'PT401', MESSAGE = 'Invalid, revoked or expired API key',
      DETAIL = 'invalid_api_key', HINT = 'Send a live key as "Authorization: Bearer <key>".';
  END IF;
  IF v_key.problem_code = 'insufficient_scope' OR v_key.tenant_id IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'PT403', MESSAGE = 'This API key may not read',
      DETAIL = 'insufficient_scope', HINT = 'Use a tenant key with the "read" scope.';
  END IF;
  IF v_key.problem_code = 'tenant_suspended' THEN
    RAISE EXCEPTION USING ERRCODE = 'PT403', MESSAGE = 'Tenant is suspended',
      DETAIL = 'tenant_suspended', HINT = 'Contact the platform operator.';
  END IF;

  PERFORM set_config('hermes.tenant_id', v_key.tenant_id::text, true);
  PERFORM set_config('hermes.api_key_id', v_key.api_key_id::text, true);
END
$$;
COMMENT ON FUNCTION private.check_request() IS
  'PostgREST pre-request: resolves the bearer API key to its tenant for row-level security.';
GRANT EXECUTE ON FUNCTION private.check_request() TO hermes_integrator, hermes_anon;
