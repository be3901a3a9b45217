-- Resolves a bearer token to its key and tenant and checks one scope. Called by the
-- command API before every command. Records last use at most once a minute, so a
-- busy key does not turn every request into a write.
CREATE OR REPLACE FUNCTION app.authenticate(p_token text, p_scope text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_key    app.api_keys;
  v_status text;
BEGIN
  SELECT * INTO v_key FROM app.api_keys
   WHERE secret_hash = sha256(convert_to(coalesce(p_token, ''), 'UTF8'));
  IF NOT FOUND OR v_key.revoked_at IS NOT NULL
     OR (v_key.expires_at IS NOT NULL AND v_key.expires_at <= now()) THEN
    PERFORM private.raise_problem(401, 'invalid_api_key', 'Invalid, revoked or expired API key.',
      'Send a live key as "Authorization: Bearer <key>".');
  END IF;
  IF p_scope IS NULL OR NOT (p_scope = ANY (v_key.scopes)) THEN
    PERFORM private.raise_problem(403, 'insufficient_scope',
      format('This API key lacks the scope %s.', p_scope),
      format('Use a key with the "%s" scope.', p_scope));
  END IF;
  IF v_key.tenant_id IS NOT NULL THEN
    SELECT status INTO v_status FROM app.tenants WHERE id = v_key.tenant_id;
    IF v_status <> 'active' THEN
      PERFORM private.raise_problem(403, 'tenant_suspended', 'The tenant is suspended.');
    END IF;
  END IF;
  IF v_key.last_used_at IS NULL OR v_key.last_used_at < now() - interval '1 minute' THEN
    UPDATE app.api_keys SET last_used_at = now() WHERE id = v_key.id;
  END IF;
  RETURN jsonb_build_object('api_key_id', v_key.id, 'tenant_id', v_key.tenant_id,
                            'prefix', v_key.prefix, 'scopes', to_jsonb(v_key.scopes));
END
$$;
COMMENT ON FUNCTION app.authenticate(text, text) IS
  'Checks a bearer token and one scope; returns {api_key_id, tenant_id, prefix, scopes}. HM401/HM403.';
GRANT EXECUTE ON FUNCTION app.authenticate(text, text) TO hermes_api;
