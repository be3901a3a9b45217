-- The provider accepted the message (e.g. Twilio answered 201 with a SID and a
-- status). Always recorded, whatever claim the caller held: the provider has the
-- message. If the attempt already holds another provider id, this is a second
-- hand-off (I3 broken) and is recorded as such, not hidden. The status the provider
-- gave is applied like a receipt (it may already be terminal when found by
-- reconciliation). Returns {status}: the message status afterwards.
CREATE OR REPLACE FUNCTION app.record_handoff(
  p_attempt_id uuid, p_provider_message_id text, p_provider_status text DEFAULT 'queued')
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_attempt app.message_attempts;
  v_status  text;
BEGIN
  IF p_provider_message_id IS NULL OR p_provider_message_id = '' THEN
    PERFORM private.raise_problem(422, 'missing_provider_message_id', 'A hand-off needs the provider id.');
  END IF;
  p_provider_status := coalesce(nullif(p_provider_status, ''), 'queued');
  v_attempt := private.lock_attempt(p_attempt_id);
  IF v_attempt.id IS NULL THEN
    PERFORM private.raise_problem(404, 'attempt_not_found', 'No such attempt.');
  END IF;

  IF v_attempt.provider_message_id IS NOT NULL AND v_attempt.provider_message_id <> p_provider_message_id THEN
    PERFORM private.log_event(v_attempt.message_id, v_attempt.message_created_at, v_attempt.tenant_id,
                              v_attempt.id, 'handed_off', NULL, p_provider_status, 'duplicate_handoff',
                              jsonb_build_object('provider_message_id', p_provider_message_id,
                                                 'first_provider_message_id', v_attempt.provider_message_id));
    RETURN jsonb_build_object('status', 'duplicate_handoff');
  END IF;

  IF v_attempt.provider_message_id IS NULL THEN
    UPDATE app.message_attempts
       SET provider_message_id = p_provider_message_id,
           handed_off_at = now(),
           status = CASE WHEN status IN ('pending', 'claimed') THEN 'handed_off' ELSE status END,
           updated_at = now()
     WHERE id = v_attempt.id AND message_created_at = v_attempt.message_created_at;
    v_status := private.advance_message(v_attempt.message_id, v_attempt.message_created_at, 'sent',
                                        v_attempt.provider, p_provider_message_id);
    PERFORM private.log_event(v_attempt.message_id, v_attempt.message_created_at, v_attempt.tenant_id,
                              v_attempt.id, 'handed_off', v_status, p_provider_status, NULL,
                              jsonb_build_object('provider_message_id', p_provider_message_id));
  END IF;
  RETURN jsonb_build_object('status',
    private.apply_provider_status(p_attempt_id, p_provider_status) ->> 'message_status');
END
$$;
COMMENT ON FUNCTION app.record_handoff(uuid, text, text) IS
  'Records that the provider accepted an attempt (its message id and status); idempotent.';
GRANT EXECUTE ON FUNCTION app.record_handoff(uuid, text, text) TO hermes_worker;
