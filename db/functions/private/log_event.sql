-- Appends to a message's event ledger. With a dedupe key, a second identical event is
-- ignored; returns whether the row was written.
CREATE OR REPLACE FUNCTION private.log_event(
  p_message_id uuid, p_created_at timestamptz, p_tenant_id uuid, p_attempt_id uuid,
  p_event_type text, p_status text, p_provider_status text DEFAULT NULL,
  p_error_code text DEFAULT NULL, p_details jsonb DEFAULT '{}', p_dedupe_key text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  INSERT INTO app.message_events (message_created_at, message_id, tenant_id, attempt_id,
                                  event_type, status, provider_status, error_code, details, dedupe_key)
  VALUES (p_created_at, p_message_id, p_tenant_id, p_attempt_id, p_event_type, p_status,
          p_provider_status, p_error_code, coalesce(p_details, '{}'), p_dedupe_key)
  ON CONFLICT (message_id, message_created_at, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING;
  RETURN FOUND;
END
$$;
COMMENT ON FUNCTION private.log_event(uuid, timestamptz, uuid, uuid, text, text, text, text, jsonb, text) IS
  'Appends a message event; deduplicated on dedupe_key when given.';
