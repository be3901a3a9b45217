-- POST /v1/suppressions and POST /v1/suppressions/remove, for the key's tenant.
CREATE OR REPLACE FUNCTION app.record_suppressions(
  p_token text, p_action text, p_list text, p_entries jsonb, p_reason text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_who private.principal := private.authorize(p_token, 'compliance:write');
BEGIN
  RETURN private.record_suppressions(v_who.tenant_id, v_who.api_key_id, p_action, p_list, p_entries, p_reason);
END
$$;
COMMENT ON FUNCTION app.record_suppressions(text, text, text, jsonb, text) IS
  'Adds to / removes from one of the key''s tenant''s suppression lists (compliance:write).';
REVOKE ALL ON FUNCTION app.record_suppressions(text, text, text, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.record_suppressions(text, text, text, jsonb, text) TO hermes_api;
