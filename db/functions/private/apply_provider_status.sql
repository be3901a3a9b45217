-- Applies a provider status to an attempt and its message: only a status of higher
-- rank than the attempt's applies; a terminal one (rank >= 100) ends the attempt and
-- the message (first terminal wins). Used for the status a provider answers at
-- hand-off, for one found by reconciliation, and for every status callback, so all
-- three reach the same state. Returns {applied, message_status}.
CREATE OR REPLACE FUNCTION private.apply_provider_status(
  p_attempt_id uuid, p_provider_status text, p_error_code text DEFAULT NULL,
  p_error_message text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_attempt app.message_attempts;
  v_rank    int;
  v_mstatus text;
  v_status  text;
BEGIN
  v_attempt := private.lock_attempt(p_attempt_id);
  IF v_attempt.id IS NULL THEN
    PERFORM private.raise_problem(404, 'attempt_not_found', 'No such attempt.');
  END IF;
  SELECT rank, message_status INTO v_rank, v_mstatus FROM private.twilio_status(p_provider_status);
  IF v_rank IS NULL OR v_rank <= v_attempt.provider_status_rank
     OR v_attempt.status IN ('delivered', 'undelivered', 'failed', 'rejected', 'unknown') THEN
    SELECT status INTO v_status FROM app.messages
     WHERE id = v_attempt.message_id AND created_at = v_attempt.message_created_at;
    RETURN jsonb_build_object('applied', false, 'message_status', v_status);
  END IF;

  UPDATE app.message_attempts
     SET provider_status = p_provider_status,
         provider_status_rank = v_rank,
         status = CASE WHEN v_rank >= 100 THEN v_mstatus
                       WHEN status IN ('pending', 'claimed') THEN 'handed_off'
                       ELSE status END,
         error_code = coalesce(p_error_code, error_code),
         error_message = coalesce(nullif(p_error_message, ''), error_message),
         updated_at = now()
   WHERE id = v_attempt.id AND message_created_at = v_attempt.message_created_at;
  v_status := private.advance_message(v_attempt.message_id, v_attempt.message_created_at, v_mstatus,
                                      v_attempt.provider, v_attempt.provider_message_id,
                                      p_error_code, nullif(p_error_message, ''));
  RETURN jsonb_build_object('applied', true, 'message_status', v_status);
END
$$;
COMMENT ON FUNCTION private.apply_provider_status(uuid, text, text, text) IS
  'Monotonic provider status change of an attempt and its message; terminal statuses end both.';
