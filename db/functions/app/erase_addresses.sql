-- POST /v1/erasures: the key's tenant forgets people's addresses (compliance:write).
CREATE OR REPLACE FUNCTION app.erase_addresses(p_token text, p_addresses jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_who private.principal := private.authorize(p_token, 'compliance:write');
BEGIN
  RETURN private.erase_addresses(v_who.tenant_id, v_who.api_key_id, p_addresses);
END
$$;
COMMENT ON FUNCTION app.erase_addresses(text, jsonb) IS
  'Erases addresses for the key''s tenant: personal data redacted, hashed tombstones kept (compliance:write).';
REVOKE ALL ON FUNCTION app.erase_addresses(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.erase_addresses(text, jsonb) TO hermes_api;
