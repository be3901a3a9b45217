-- The one check of a bearer token, behind both doors: private.authorize (the command
-- functions, HM401/HM403 problems) and private.check_request (PostgREST's reads,
-- PT401/PT403). The token's sha256 must name a key that is not revoked or expired,
-- that has p_scope, and whose tenant (platform keys have none) is active. Raises
-- nothing: the caller maps problem_status/problem_code to its own error style.
-- problem_code: invalid_api_key (401), insufficient_scope, tenant_suspended (403).
CREATE OR REPLACE FUNCTION private.check_api_key(
  p_token text, p_scope text,
  OUT api_key_id uuid, OUT tenant_id uuid, OUT prefix text, OUT scopes text[],
  OUT last_used_at timestamptz, OUT problem_status int, OUT problem_code text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_key record;
BEGIN
  SELECT k.id, k.tenant_id, k.prefix, k.scopes, k.last_used_at, k.revoked_at, k.expires_at,
         t.status AS tenant_status
    INTO v_key
    FROM app.api_keys k
    LEFT JOIN app.tenants t ON t.id = k.tenant_id
   WHERE k.secret_hash = sha256(convert_to(coalesce(p_token, ''), 'UTF8'));
  IF NOT FOUND OR v_key.revoked_at IS NOT NULL
     OR (v_key.expires_at IS NOT NULL AND v_key.expires_at <= now()) THEN
    problem_status := 401;
    problem_code := 'invalid_api_key';
    RETURN;
  END IF;
  api_key_id := v_key.id;
  tenant_id := v_key.tenant_id;
  prefix := v_key.prefix;
  scopes := v_key.scopes;
  last_used_at := v_key.last_used_at;
  IF p_scope IS NULL OR NOT (p_scope = ANY (v_key.scopes)) THEN
    problem_status := 403;
    problem_code := 'insufficient_scope';
  ELSIF v_key.tenant_id IS NOT NULL AND v_key.tenant_status IS DISTINCT FROM 'active' THEN
    problem_status := 403;
    problem_code := 'tenant_suspended';
  END IF;
END
$$;
COMMENT ON FUNCTION private.check_api_key(text, text) IS
  'Checks a bearer token and one scope without raising: the key, its tenant and scopes, or a problem code.';
