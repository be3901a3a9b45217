-- One message of the tenant, by id (the id alone locates its partition).
CREATE OR REPLACE FUNCTION app.get_message(p_tenant_id uuid, p_message_id uuid)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_message app.messages;
BEGIN
  SELECT * INTO v_message FROM app.messages
   WHERE id = p_message_id AND created_at = private.uuid7_time(p_message_id)
     AND tenant_id = p_tenant_id;
  IF NOT FOUND THEN
    PERFORM private.raise_problem(404, 'message_not_found', 'No such message.');
  END IF;
  RETURN private.message_json(v_message);
END
$$;
COMMENT ON FUNCTION app.get_message(uuid, uuid) IS 'A tenant''s message by id, or HM404.';
GRANT EXECUTE ON FUNCTION app.get_message(uuid, uuid) TO hermes_api;
