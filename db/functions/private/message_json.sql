-- The representation of a message returned by the command API.
CREATE OR REPLACE FUNCTION private.message_json(p_message app.messages)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT jsonb_build_object(
    'id', p_message.id, 'channel', p_message.channel, 'status', p_message.status,
    'reasons', p_message.reasons, 'vertical', p_message.vertical, 'category', p_message.category,
    'to', p_message.to_address, 'from', p_message.from_address, 'body', p_message.body,
    'provider', p_message.provider, 'provider_message_id', p_message.provider_message_id,
    'error_code', p_message.error_code, 'error_message', p_message.error_message,
    'created_at', p_message.created_at, 'updated_at', p_message.updated_at,
    'sent_at', p_message.sent_at, 'completed_at', p_message.completed_at,
    'steps', p_message.steps, 'current_step', p_message.current_step, 'contact_id', p_message.contact_id)
$$;
COMMENT ON FUNCTION private.message_json(app.messages) IS 'A message as the command API returns it.';
