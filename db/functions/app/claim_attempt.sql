-- A worker's first call for a send job. Locks the attempt and decides:
--   send       pending -> claimed: call the provider, then app.record_handoff
--   reconcile  it was claimed before and no hand-off was recorded (a worker died or a
--              call failed ambiguously): the provider may or may not have it. Look it
--              up there and call app.reconcile_attempt -- never resend blindly.
--   skip       nothing to do (already handed off, finished, or unknown attempt)
--   defer      it was claimed less than the claim lease ago (private.settings
--              claim_lease): that worker may still be talking to the provider. A new
--              job is scheduled for when the lease ends; this one has nothing to do.
-- claim_no (claim_count after this claim) fences workers: only the latest claim may
-- reconcile. The compliance re-check at hand-off belongs here, under this lock.
CREATE OR REPLACE FUNCTION app.claim_attempt(p_attempt_id uuid)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_attempt app.message_attempts;
  v_message app.messages;
  v_tenant  app.tenants;
  v_lease   interval := coalesce(
    (SELECT value::interval FROM private.settings WHERE key = 'claim_lease'), interval '60 seconds');
  v_wait    interval;
BEGIN
  v_attempt := private.lock_attempt(p_attempt_id);
  IF v_attempt.id IS NULL THEN
    RETURN jsonb_build_object('action', 'skip', 'reason', 'attempt_not_found');
  END IF;
  IF v_attempt.status NOT IN ('pending', 'claimed') THEN
    RETURN jsonb_build_object('action', 'skip', 'reason', 'attempt_' || v_attempt.status);
  END IF;
  SELECT * INTO v_message FROM app.messages
   WHERE id = v_attempt.message_id AND created_at = v_attempt.message_created_at;

  IF v_attempt.status = 'claimed' AND v_attempt.last_claimed_at > now() - v_lease THEN
    v_wait := v_attempt.last_claimed_at + v_lease - now();
    PERFORM private.enqueue_job('send_sms', jsonb_build_object('attempt_id', v_attempt.id), v_wait);
    PERFORM private.log_event(v_message.id, v_message.created_at, v_message.tenant_id, v_attempt.id,
                              'reclaim_deferred', NULL, NULL, NULL,
                              jsonb_build_object('wait_seconds', extract(epoch FROM v_wait),
                                                 'claim_no', v_attempt.claim_count));
    RETURN jsonb_build_object('action', 'defer', 'reason', 'claim_lease',
                              'wait_seconds', extract(epoch FROM v_wait));
  END IF;
  SELECT * INTO v_tenant FROM app.tenants WHERE id = v_attempt.tenant_id;

  IF v_attempt.status = 'pending' AND v_tenant.status <> 'active' THEN
    UPDATE app.message_attempts
       SET status = 'rejected', error_code = 'tenant_suspended', updated_at = now()
     WHERE id = v_attempt.id AND message_created_at = v_attempt.message_created_at;
    PERFORM private.advance_message(v_message.id, v_message.created_at, 'rejected',
                                    p_error_code => 'tenant_suspended',
                                    p_error_message => 'The tenant was suspended before hand-off.');
    PERFORM private.log_event(v_message.id, v_message.created_at, v_message.tenant_id, v_attempt.id,
                              'rejected', 'rejected', NULL, 'tenant_suspended');
    RETURN jsonb_build_object('action', 'skip', 'reason', 'tenant_suspended');
  END IF;

  UPDATE app.message_attempts
     SET status = 'claimed', claim_count = claim_count + 1,
         claimed_at = coalesce(claimed_at, now()), last_claimed_at = now(), updated_at = now()
   WHERE id = v_attempt.id AND message_created_at = v_attempt.message_created_at
  RETURNING * INTO v_attempt;
  PERFORM private.advance_message(v_message.id, v_message.created_at, 'sending');
  PERFORM private.log_event(v_message.id, v_message.created_at, v_message.tenant_id, v_attempt.id,
                            CASE WHEN v_attempt.claim_count = 1 THEN 'claimed' ELSE 'reclaimed' END,
                            'sending', NULL, NULL,
                            jsonb_build_object('claim_no', v_attempt.claim_count));

  RETURN jsonb_build_object(
    'action', CASE WHEN v_attempt.claim_count = 1 THEN 'send' ELSE 'reconcile' END,
    'attempt_id', v_attempt.id, 'claim_no', v_attempt.claim_count,
    'message_id', v_message.id, 'provider', v_attempt.provider,
    'to', v_message.to_address, 'from', v_message.from_address, 'body', v_message.body,
    'first_claimed_at', v_attempt.claimed_at);
END
$$;
COMMENT ON FUNCTION app.claim_attempt(uuid) IS
  'Claims a send attempt for a worker: {action: send|reconcile|skip, claim_no, to, from, body, ...}.';
GRANT EXECUTE ON FUNCTION app.claim_attempt(uuid) TO hermes_worker;
