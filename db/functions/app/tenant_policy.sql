-- GET /v1/policy and PUT /v1/policy: the key's tenant's compliance policy.
CREATE OR REPLACE FUNCTION app.get_tenant_policy(p_token text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_who private.principal := private.authorize(p_token, 'read');
BEGIN
  RETURN private.tenant_policy_json(v_who.tenant_id);
END
$$;
COMMENT ON FUNCTION app.get_tenant_policy(text) IS 'The key''s tenant''s compliance policy, defaults filled in (read).';
REVOKE ALL ON FUNCTION app.get_tenant_policy(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.get_tenant_policy(text) TO hermes_api;

CREATE OR REPLACE FUNCTION app.set_tenant_policy(p_token text, p_policy jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_who private.principal := private.authorize(p_token, 'compliance:write');
BEGIN
  RETURN private.set_tenant_policy(v_who.tenant_id, v_who.api_key_id, p_policy);
END
$$;
COMMENT ON FUNCTION app.set_tenant_policy(text, jsonb) IS 'Sets part of the key''s tenant''s compliance policy (compliance:write).';
REVOKE ALL ON FUNCTION app.set_tenant_policy(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.set_tenant_policy(text, jsonb) TO hermes_api;
