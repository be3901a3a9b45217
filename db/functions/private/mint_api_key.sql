-- Creates an API key and returns it with its token, the only time the token exists
-- outside the client: the table keeps sha256(token). The token is an HS256 JWT
-- (role hermes_integrator, kid = the public prefix, jti = 244 random bits) so that
-- PostgREST accepts it as a bearer token; its hash is what private.check_request and
-- private.authorize check.
CREATE OR REPLACE FUNCTION private.mint_api_key(
  p_tenant_id uuid, p_name text, p_scopes text[], p_expires_at timestamptz DEFAULT NULL,
  p_rotated_from uuid DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_env    text;
  v_prefix text;
  v_token  text;
  v_key    app.api_keys;
BEGIN
  IF p_name IS NULL OR length(btrim(p_name)) NOT BETWEEN 1 AND 200 THEN
    PERFORM private.raise_problem(422, 'invalid_name', 'An API key needs a name of 1 to 200 characters.');
  END IF;
  IF p_scopes IS NULL OR cardinality(p_scopes) = 0
     OR NOT (p_scopes <@ private.api_key_scopes())
     OR ((p_tenant_id IS NULL) <> ('admin' = ANY (p_scopes))) THEN
    PERFORM private.raise_problem(422, 'invalid_scopes',
      format('Invalid scopes %s.', coalesce(p_scopes::text, 'null')),
      'Tenant keys take any of messages:write, keys:write, read, compliance:write, imports:write, providers:write.');
  END IF;
  IF p_expires_at IS NOT NULL AND p_expires_at <= now() THEN
    PERFORM private.raise_problem(422, 'invalid_expires_at', 'expires_at must be in the future.');
  END IF;

  SELECT coalesce((SELECT environment::text FROM app.tenants WHERE id = p_tenant_id), 'admin')
    INTO v_env;
  v_prefix := 'hk_' || v_env || '_' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 12);
  v_token := private.sign_jwt(jsonb_strip_nulls(jsonb_build_object(
    'role', 'hermes_integrator',
    'kid', v_prefix,
    'jti', replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''),
    'exp', floor(extract(epoch FROM p_expires_at))::bigint)));

  INSERT INTO app.api_keys (tenant_id, prefix, secret_hash, name, scopes, expires_at, rotated_from)
  VALUES (p_tenant_id, v_prefix, sha256(convert_to(v_token, 'UTF8')), btrim(p_name),
          (SELECT array_agg(DISTINCT s ORDER BY s) FROM unnest(p_scopes) s), p_expires_at, p_rotated_from)
  RETURNING * INTO v_key;

  RETURN private.api_key_json(v_key) || jsonb_build_object('token', v_token);
END
$$;
COMMENT ON FUNCTION private.mint_api_key(uuid, text, text[], timestamptz, uuid) IS
  'Creates an API key; returns its JSON with the token (shown once).';

-- Every scope a key may hold: admin (platform keys only), and for tenant keys
-- messages:write (send), keys:write (manage keys), read (the read API and GET),
-- compliance:write (consent events, suppression lists, erasures), imports:write
-- (contact imports and their re-parses), providers:write (the tenant's own provider
-- accounts: not keys:write, since an account receives every later message).
CREATE OR REPLACE FUNCTION private.api_key_scopes()
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT ARRAY['messages:write', 'keys:write', 'read', 'compliance:write', 'imports:write', 'providers:write', 'admin'] $$;
COMMENT ON FUNCTION private.api_key_scopes() IS 'The scopes an API key may hold.';

-- The public view of a key: never the token or its hash.
CREATE OR REPLACE FUNCTION private.api_key_json(p_key app.api_keys)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT jsonb_build_object(
    'id', p_key.id, 'prefix', p_key.prefix, 'name', p_key.name, 'scopes', to_jsonb(p_key.scopes),
    'tenant_id', p_key.tenant_id, 'created_at', p_key.created_at, 'expires_at', p_key.expires_at,
    'revoked_at', p_key.revoked_at, 'last_used_at', p_key.last_used_at,
    'rotated_from', p_key.rotated_from,
    'status', CASE WHEN p_key.revoked_at IS NOT NULL THEN 'revoked'
                   WHEN p_key.expires_at IS NOT NULL AND p_key.expires_at <= now() THEN 'expired'
                   ELSE 'active' END)
$$;
COMMENT ON FUNCTION private.api_key_json(app.api_keys) IS 'An API key as JSON, without secret material.';
