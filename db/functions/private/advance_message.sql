-- Moves a message forward: only to a status of higher rank, never out of a terminal
-- status. Returns the status the message has afterwards. The caller holds the lock
-- of the attempt; this locks the message row.
CREATE OR REPLACE FUNCTION private.advance_message(
  p_message_id uuid, p_created_at timestamptz, p_status text,
  p_provider text DEFAULT NULL, p_provider_message_id text DEFAULT NULL,
  p_error_code text DEFAULT NULL, p_error_message text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_current text;
BEGIN
  SELECT status INTO v_current FROM app.messages
   WHERE id = p_message_id AND created_at = p_created_at FOR UPDATE;
  IF NOT FOUND THEN
    PERFORM private.raise_problem(404, 'message_not_found', 'No such message.');
  END IF;
  IF private.message_status_rank(p_status) <= private.message_status_rank(v_current) THEN
    -- Still learn the provider id if it was not known yet.
    UPDATE app.messages
       SET provider = coalesce(provider, p_provider),
           provider_message_id = coalesce(provider_message_id, p_provider_message_id)
     WHERE id = p_message_id AND created_at = p_created_at
       AND provider_message_id IS NULL AND p_provider_message_id IS NOT NULL;
    RETURN v_current;
  END IF;
  UPDATE app.messages
     SET status = p_status,
         provider = coalesce(p_provider, provider),
         provider_message_id = coalesce(provider_message_id, p_provider_message_id),
         error_code = coalesce(p_error_code, error_code),
         error_message = coalesce(p_error_message, error_message),
         updated_at = now(),
         sent_at = CASE WHEN p_status IN ('sent', 'delivered', 'undelivered') THEN coalesce(sent_at, now())
                        ELSE sent_at END,
         completed_at = CASE WHEN private.message_status_rank(p_status) = 100 THEN now() END
   WHERE id = p_message_id AND created_at = p_created_at;
  RETURN p_status;
END
$$;
COMMENT ON FUNCTION private.advance_message(uuid, timestamptz, text, text, text, text, text) IS
  'Monotonic message status change; terminal statuses never change.';
