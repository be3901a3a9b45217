-- Key management for the tenant of the acting key (keys:write): create, list, rotate
-- (with overlap), revoke. No escalation: a key only creates, rotates or revokes keys
-- whose scopes it holds itself (HM403 scope_escalation) -- else a keys:write key could
-- cut off the tenant's wider keys.

-- Refuses a key acting on (handing out, rotating, revoking) scopes it lacks.
CREATE OR REPLACE FUNCTION private.refuse_scope_escalation(p_who private.principal, p_scopes text[])
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  -- Unknown scope names are not escalation but bad input: private.mint_api_key refuses
  -- them (HM422 invalid_scopes).
  IF NOT (ARRAY(SELECT s FROM unnest(p_scopes) s WHERE s = ANY (private.api_key_scopes())) <@ p_who.scopes) THEN
    PERFORM private.raise_problem(403, 'scope_escalation',
      format('This API key cannot act on %s: it holds only %s.',
             (SELECT string_agg(DISTINCT s, ', ') FROM unnest(p_scopes) s
               WHERE s = ANY (private.api_key_scopes()) AND NOT (s = ANY (p_who.scopes))),
             array_to_string(p_who.scopes, ', ')),
      'A key can only create, rotate or revoke keys with scopes it has itself.');
  END IF;
END
$$;
COMMENT ON FUNCTION private.refuse_scope_escalation(private.principal, text[]) IS
  'HM403 scope_escalation unless p_scopes is a subset of the acting key''s scopes.';

CREATE OR REPLACE FUNCTION app.create_api_key(
  p_token text, p_name text, p_scopes text[], p_expires_at timestamptz DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_who private.principal := private.authorize(p_token, 'keys:write');
  v_key jsonb;
BEGIN
  PERFORM private.refuse_scope_escalation(v_who, p_scopes);
  v_key := private.mint_api_key(v_who.tenant_id, p_name, p_scopes, p_expires_at);
  PERFORM private.audit(v_who.tenant_id, v_who.api_key_id, 'api_key.create', v_key ->> 'id',
                        jsonb_build_object('scopes', v_key -> 'scopes'));
  RETURN v_key;
END
$$;
COMMENT ON FUNCTION app.create_api_key(text, text, text[], timestamptz) IS
  'Creates an API key for the acting key''s tenant, with at most its scopes; returns it with its token (shown once).';

CREATE OR REPLACE FUNCTION app.list_api_keys(p_token text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER  -- VOLATILE: authorizing records the key's last use
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_who private.principal := private.authorize(p_token, 'keys:write');
BEGIN
  RETURN (SELECT coalesce(jsonb_agg(private.api_key_json(k) ORDER BY k.created_at, k.id), '[]')
            FROM app.api_keys k
           WHERE k.tenant_id = v_who.tenant_id);
END
$$;
COMMENT ON FUNCTION app.list_api_keys(text) IS 'The acting key''s tenant''s API keys, without secrets.';

-- A successor with the rotated key's name, scopes and expiry; the old key keeps
-- working for the overlap (never longer than it would have), then expires.
CREATE OR REPLACE FUNCTION app.rotate_api_key(
  p_token text, p_key_id uuid, p_overlap interval DEFAULT interval '24 hours')
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_who private.principal := private.authorize(p_token, 'keys:write');
  v_old app.api_keys;
  v_new jsonb;
BEGIN
  IF p_overlap IS NULL OR p_overlap < interval '0' OR p_overlap > interval '30 days' THEN
    PERFORM private.raise_problem(422, 'invalid_overlap', 'The overlap must be between 0 and 30 days.');
  END IF;
  SELECT * INTO v_old FROM app.api_keys
   WHERE id = p_key_id AND tenant_id = v_who.tenant_id FOR UPDATE;
  IF NOT FOUND THEN
    PERFORM private.raise_problem(404, 'api_key_not_found', 'No such API key.');
  END IF;
  IF v_old.revoked_at IS NOT NULL OR (v_old.expires_at IS NOT NULL AND v_old.expires_at <= now()) THEN
    PERFORM private.raise_problem(409, 'api_key_not_active', 'Only an active key can be rotated.',
      'Create a new key instead.');
  END IF;
  PERFORM private.refuse_scope_escalation(v_who, v_old.scopes);
  v_new := private.mint_api_key(v_who.tenant_id, v_old.name, v_old.scopes, v_old.expires_at, v_old.id);
  UPDATE app.api_keys
     SET expires_at = least(coalesce(expires_at, 'infinity'), now() + p_overlap)
   WHERE id = v_old.id;
  PERFORM private.audit(v_who.tenant_id, v_who.api_key_id, 'api_key.rotate', v_old.id::text,
                        jsonb_build_object('new_key_id', v_new ->> 'id', 'overlap', p_overlap::text));
  RETURN v_new;
END
$$;
COMMENT ON FUNCTION app.rotate_api_key(text, uuid, interval) IS
  'Issues a successor key (same name, scopes and expiry); the old one keeps working for the overlap, then expires.';

CREATE OR REPLACE FUNCTION app.revoke_api_key(p_token text, p_key_id uuid)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_who private.principal := private.authorize(p_token, 'keys:write');
  v_key app.api_keys;
BEGIN
  SELECT * INTO v_key FROM app.api_keys
   WHERE id = p_key_id AND tenant_id = v_who.tenant_id FOR UPDATE;
  IF NOT FOUND THEN
    PERFORM private.raise_problem(404, 'api_key_not_found', 'No such API key.');
  END IF;
  PERFORM private.refuse_scope_escalation(v_who, v_key.scopes);
  UPDATE app.api_keys SET revoked_at = coalesce(revoked_at, now())
   WHERE id = p_key_id
  RETURNING * INTO v_key;
  PERFORM private.audit(v_who.tenant_id, v_who.api_key_id, 'api_key.revoke', p_key_id::text);
  RETURN private.api_key_json(v_key);
END
$$;
COMMENT ON FUNCTION app.revoke_api_key(text, uuid) IS
  'Revokes a key of the acting key''s tenant at once (idempotent), if it holds every scope of that key.';

GRANT EXECUTE ON FUNCTION
  app.create_api_key(text, text, text[], timestamptz),
  app.list_api_keys(text),
  app.rotate_api_key(text, uuid, interval),
  app.revoke_api_key(text, uuid)
TO hermes_api;
