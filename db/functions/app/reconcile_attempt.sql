-- After a re-claim, the worker looked the message up at the provider and passes what
-- it found: p_candidates = [{"sid": ..., "status": ...}, ...], provider messages with
-- the same to/from/body created since the first claim. A candidate not already
-- recorded for another attempt is this attempt's hand-off: record it (no resend).
-- None: the provider never got it, and resending is safe -- recorded as a 'resend'
-- event with that reason. Returns {action: done|send|skip}.
CREATE OR REPLACE FUNCTION app.reconcile_attempt(p_attempt_id uuid, p_claim_no int, p_candidates jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_attempt app.message_attempts;
  v_found   jsonb;
BEGIN
  SELECT * INTO v_attempt FROM app.message_attempts
   WHERE id = p_attempt_id AND message_created_at = private.uuid7_time(p_attempt_id)
   FOR UPDATE;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('action', 'skip', 'reason', 'attempt_not_found');
  ELSIF v_attempt.status <> 'claimed' THEN
    -- e.g. a status callback carrying this attempt's id resolved it meanwhile.
    RETURN jsonb_build_object('action', 'skip', 'reason', 'attempt_' || v_attempt.status);
  ELSIF v_attempt.claim_count <> p_claim_no THEN
    RETURN jsonb_build_object('action', 'skip', 'reason', 'stale_claim');
  END IF;

  SELECT c INTO v_found
    FROM jsonb_array_elements(coalesce(p_candidates, '[]')) c
   WHERE c ->> 'sid' IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM app.message_attempts o
                      WHERE o.provider = v_attempt.provider AND o.provider_message_id = c ->> 'sid')
   LIMIT 1;

  IF v_found IS NOT NULL THEN
    PERFORM private.log_event(v_attempt.message_id, v_attempt.message_created_at, v_attempt.tenant_id,
                              v_attempt.id, 'reconciled', NULL, v_found ->> 'status', NULL,
                              jsonb_build_object('provider_message_id', v_found ->> 'sid',
                                                 'claim_no', p_claim_no));
    PERFORM app.record_handoff(p_attempt_id, v_found ->> 'sid', v_found ->> 'status');
    RETURN jsonb_build_object('action', 'done', 'provider_message_id', v_found ->> 'sid');
  END IF;

  PERFORM private.log_event(v_attempt.message_id, v_attempt.message_created_at, v_attempt.tenant_id,
                            v_attempt.id, 'resend', 'sending', NULL, NULL,
                            jsonb_build_object('reason', 'provider_has_no_record',
                                               'claim_no', p_claim_no,
                                               'candidates', jsonb_array_length(coalesce(p_candidates, '[]'))));
  RETURN jsonb_build_object('action', 'send', 'reason', 'provider_has_no_record');
END
$$;
COMMENT ON FUNCTION app.reconcile_attempt(uuid, int, jsonb) IS
  'Resolves a re-claimed attempt from a provider lookup: record the found hand-off, or allow one resend.';
GRANT EXECUTE ON FUNCTION app.reconcile_attempt(uuid, int, jsonb) TO hermes_worker;
