-- GET /v1/messages/{id}: one message of the key's tenant (read scope), by id (the id
-- alone locates its partition). Another tenant's message is HM404, like a missing one.
CREATE OR REPLACE FUNCTION app.get_message(p_token text, p_message_id uuid)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER  -- VOLATILE: authorizing records the key's last use
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_who     private.principal := private.authorize(p_token, 'read');
  v_message app.messages;
BEGIN
  SELECT * INTO v_message FROM app.messages
   WHERE id = p_message_id AND created_at = private.uuid7_time(p_message_id)
     AND tenant_id = v_who.tenant_id;
  IF NOT FOUND THEN
    PERFORM private.raise_problem(404, 'message_not_found', 'No such message.');
  END IF;
  RETURN private.message_json(v_message);
END
$$;
COMMENT ON FUNCTION app.get_message(text, uuid) IS 'A message of the key''s tenant by id (read scope), or HM404.';
GRANT EXECUTE ON FUNCTION app.get_message(text, uuid) TO hermes_api;
