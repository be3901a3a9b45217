-- What the command API needs to read what people type for this key's tenant: its
-- default country (phone numbers without a country code). Authorized with the scope
-- of the command the API is about to call, so it tells nothing to a key that could not
-- make that call. The API caches the answer for a minute per key, and asks only when
-- a number comes without a country code.
CREATE OR REPLACE FUNCTION app.tenant_defaults(p_token text, p_scope text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_who private.principal := private.authorize(p_token, p_scope);
BEGIN
  RETURN (SELECT jsonb_build_object('default_country', t.default_country)
            FROM app.tenants t WHERE t.id = v_who.tenant_id);
END
$$;
COMMENT ON FUNCTION app.tenant_defaults(text, text) IS
  'The key''s tenant''s defaults for reading input ({default_country}); needs the scope of the command to come.';
REVOKE ALL ON FUNCTION app.tenant_defaults(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.tenant_defaults(text, text) TO hermes_api;
