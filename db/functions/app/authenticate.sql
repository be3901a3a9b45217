-- Resolves a bearer token to its key and tenant and checks one scope (private.authorize,
-- the check every command runs first). The command API no longer calls it -- each
-- command authorizes itself -- but an operator or an integration may: it answers
-- "would this key be accepted for this scope" with the key it names.
CREATE OR REPLACE FUNCTION app.authenticate(p_token text, p_scope text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_who private.principal := private.authorize(p_token, p_scope, false);
BEGIN
  RETURN jsonb_build_object('api_key_id', v_who.api_key_id, 'tenant_id', v_who.tenant_id,
                            'prefix', v_who.prefix, 'scopes', to_jsonb(v_who.scopes));
END
$$;
COMMENT ON FUNCTION app.authenticate(text, text) IS
  'Checks a bearer token and one scope; returns {api_key_id, tenant_id, prefix, scopes}. HM401/HM403.';
GRANT EXECUTE ON FUNCTION app.authenticate(text, text) TO hermes_api;
