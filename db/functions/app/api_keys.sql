-- Key management for a tenant: create, list, rotate (with overlap), revoke.

CREATE OR REPLACE FUNCTION app.create_api_key(
  p_tenant_id uuid, p_actor_key_id uuid, p_name text, p_scopes text[],
  p_expires_at timestamptz DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_key jsonb;
BEGIN
  IF p_tenant_id IS NULL THEN
    PERFORM private.raise_problem(422, 'tenant_required', 'Keys are created for a tenant.');
  ELSIF NOT EXISTS (SELECT 1 FROM app.tenants WHERE id = p_tenant_id) THEN
    PERFORM private.raise_problem(404, 'tenant_not_found', 'No such tenant.');
  END IF;
  v_key := private.mint_api_key(p_tenant_id, p_name, p_scopes, p_expires_at);
  PERFORM private.audit(p_tenant_id, p_actor_key_id, 'api_key.create', v_key ->> 'id',
                        jsonb_build_object('scopes', v_key -> 'scopes'));
  RETURN v_key;
END
$$;
COMMENT ON FUNCTION app.create_api_key(uuid, uuid, text, text[], timestamptz) IS
  'Creates an API key for the tenant; returns it with its token (shown once).';

CREATE OR REPLACE FUNCTION app.list_api_keys(p_tenant_id uuid)
RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce(jsonb_agg(private.api_key_json(k) ORDER BY k.created_at, k.id), '[]')
    FROM app.api_keys k
   WHERE k.tenant_id = p_tenant_id
$$;
COMMENT ON FUNCTION app.list_api_keys(uuid) IS 'The tenant''s API keys, without secrets.';

CREATE OR REPLACE FUNCTION app.rotate_api_key(
  p_tenant_id uuid, p_actor_key_id uuid, p_key_id uuid, p_overlap interval DEFAULT interval '24 hours')
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_old app.api_keys;
  v_new jsonb;
BEGIN
  IF p_overlap IS NULL OR p_overlap < interval '0' OR p_overlap > interval '30 days' THEN
    PERFORM private.raise_problem(422, 'invalid_overlap', 'The overlap must be between 0 and 30 days.');
  END IF;
  SELECT * INTO v_old FROM app.api_keys
   WHERE id = p_key_id AND tenant_id = p_tenant_id FOR UPDATE;
  IF NOT FOUND THEN
    PERFORM private.raise_problem(404, 'api_key_not_found', 'No such API key.');
  END IF;
  IF v_old.revoked_at IS NOT NULL OR (v_old.expires_at IS NOT NULL AND v_old.expires_at <= now()) THEN
    PERFORM private.raise_problem(409, 'api_key_not_active', 'Only an active key can be rotated.',
      'Create a new key instead.');
  END IF;
  v_new := private.mint_api_key(p_tenant_id, v_old.name, v_old.scopes, NULL, v_old.id);
  UPDATE app.api_keys
     SET expires_at = least(coalesce(expires_at, 'infinity'), now() + p_overlap)
   WHERE id = v_old.id;
  PERFORM private.audit(p_tenant_id, p_actor_key_id, 'api_key.rotate', v_old.id::text,
                        jsonb_build_object('new_key_id', v_new ->> 'id', 'overlap', p_overlap::text));
  RETURN v_new;
END
$$;
COMMENT ON FUNCTION app.rotate_api_key(uuid, uuid, uuid, interval) IS
  'Issues a successor key; the old one keeps working for the overlap, then expires.';

CREATE OR REPLACE FUNCTION app.revoke_api_key(p_tenant_id uuid, p_actor_key_id uuid, p_key_id uuid)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_key app.api_keys;
BEGIN
  UPDATE app.api_keys SET revoked_at = coalesce(revoked_at, now())
   WHERE id = p_key_id AND tenant_id = p_tenant_id
  RETURNING * INTO v_key;
  IF NOT FOUND THEN
    PERFORM private.raise_problem(404, 'api_key_not_found', 'No such API key.');
  END IF;
  PERFORM private.audit(p_tenant_id, p_actor_key_id, 'api_key.revoke', p_key_id::text);
  RETURN private.api_key_json(v_key);
END
$$;
COMMENT ON FUNCTION app.revoke_api_key(uuid, uuid, uuid) IS 'Revokes a key at once (idempotent).';

GRANT EXECUTE ON FUNCTION
  app.create_api_key(uuid, uuid, text, text[], timestamptz),
  app.list_api_keys(uuid),
  app.rotate_api_key(uuid, uuid, uuid, interval),
  app.revoke_api_key(uuid, uuid, uuid)
TO hermes_api;
