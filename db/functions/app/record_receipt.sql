-- A provider status callback (delivery receipt), already signature-checked by the
-- API. The attempt id comes from the callback URL Hermes gave the provider.
--   * stored once per (provider, provider message id, status): duplicates are no-ops
--     (never deduplicated on the message id alone: later statuses must get through);
--   * statuses only move forward by rank, and the first terminal one stays
--     (private.apply_provider_status);
--   * a receipt for an attempt whose hand-off was never recorded (the worker died
--     after the provider accepted it) records that hand-off: no resend will happen.
-- Returns {duplicate, applied, message_status}.
CREATE OR REPLACE FUNCTION app.record_receipt(
  p_provider text, p_attempt_id uuid, p_provider_message_id text, p_provider_status text,
  p_error_code text DEFAULT NULL, p_error_message text DEFAULT NULL, p_payload jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_attempt app.message_attempts;
  v_status  text;
  v_code    text;
  v_result  jsonb;
BEGIN
  IF p_provider IS DISTINCT FROM 'twilio' THEN
    PERFORM private.raise_problem(422, 'unknown_provider', format('Unknown provider %s.', p_provider));
  END IF;
  IF p_provider_message_id IS NULL OR p_provider_status IS NULL THEN
    PERFORM private.raise_problem(422, 'invalid_receipt', 'A receipt needs the provider message id and status.');
  END IF;
  v_attempt := private.lock_attempt(p_attempt_id);
  IF v_attempt.id IS NULL THEN
    PERFORM private.raise_problem(404, 'attempt_not_found', 'No such attempt.');
  END IF;
  IF v_attempt.provider_message_id IS NOT NULL AND v_attempt.provider_message_id <> p_provider_message_id THEN
    PERFORM private.log_event(v_attempt.message_id, v_attempt.message_created_at, v_attempt.tenant_id,
                              v_attempt.id, 'provider_status', NULL, p_provider_status, 'provider_message_id_mismatch',
                              jsonb_build_object('provider_message_id', p_provider_message_id, 'payload', p_payload),
                              p_provider || ':' || p_provider_message_id || ':' || p_provider_status);
    RETURN jsonb_build_object('duplicate', false, 'applied', false, 'reason', 'provider_message_id_mismatch');
  END IF;

  v_code := CASE WHEN p_error_code IS NOT NULL AND p_error_code <> '' THEN p_provider || ':' || p_error_code END;
  IF NOT private.log_event(v_attempt.message_id, v_attempt.message_created_at, v_attempt.tenant_id,
                           v_attempt.id, 'provider_status', NULL, p_provider_status, v_code,
                           jsonb_build_object('provider_message_id', p_provider_message_id,
                                              'known_status', (private.twilio_status(p_provider_status)).rank IS NOT NULL,
                                              'payload', p_payload),
                           p_provider || ':' || p_provider_message_id || ':' || p_provider_status) THEN
    SELECT status INTO v_status FROM app.messages
     WHERE id = v_attempt.message_id AND created_at = v_attempt.message_created_at;
    RETURN jsonb_build_object('duplicate', true, 'applied', false, 'message_status', v_status);
  END IF;

  IF v_attempt.provider_message_id IS NULL THEN
    -- The hand-off was never recorded (callback raced the worker, or the worker died):
    -- the callback proves the provider has it.
    PERFORM app.record_handoff(v_attempt.id, p_provider_message_id, 'queued');
  END IF;
  v_result := private.apply_provider_status(v_attempt.id, p_provider_status, v_code, p_error_message);
  RETURN jsonb_build_object('duplicate', false) || v_result;
END
$$;
COMMENT ON FUNCTION app.record_receipt(text, uuid, text, text, text, text, jsonb) IS
  'Applies a provider status callback: deduplicated, monotonic, resolves unrecorded hand-offs.';
GRANT EXECUTE ON FUNCTION app.record_receipt(text, uuid, text, text, text, text, jsonb) TO hermes_api;
