-- Appends one row to the audit log; every app.* command calls it once.
CREATE OR REPLACE FUNCTION private.audit(
  p_tenant_id uuid, p_api_key_id uuid, p_action text, p_target_id text, p_details jsonb DEFAULT '{}')
RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
  INSERT INTO app.audit_log (tenant_id, api_key_id, action, target_id, details)
  VALUES (p_tenant_id, p_api_key_id, p_action, p_target_id, coalesce(p_details, '{}'));
$$;
COMMENT ON FUNCTION private.audit(uuid, uuid, text, text, jsonb) IS 'Appends a command to app.audit_log.';
