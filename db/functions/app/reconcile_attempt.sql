-- After a re-claim, the worker lists the provider's recent messages from this
-- attempt's sender to its recipient and passes them all:
--   p_candidates = [{"sid", "status", "body", "date_created"}, ...]
-- A candidate is this attempt's hand-off if its body is the message's, it was created
-- no earlier than 5 minutes before the first claim, and no other attempt has
-- recorded its id (checked under an advisory lock per provider id, so two
-- reconciles cannot adopt the same one). Then:
--   exactly one  -> record it as the hand-off: done, no resend;
--   none         -> the provider never got it: resend, recorded as a 'resend' event --
--                   if the recipient is still eligible, checked under the address lock
--                   like a first claim; if not (an opt-out arrived while the message
--                   waited for its retry), the message is rejected and nothing is sent;
--   several      -> ambiguous (the tenant sent the same text twice): adopt none and
--                   send nothing; the status callbacks, which carry the attempt id,
--                   resolve it. Checked again after the claim lease; after 6 claims
--                   the message fails as reconcile_ambiguous.
-- Not before reconcile_after (set by app.record_send_error when a call got no answer:
-- the provider lists a message late): until then it waits (no lookup is trusted).
-- Returns {action: done|send|wait|skip}.
CREATE OR REPLACE FUNCTION app.reconcile_attempt(p_attempt_id uuid, p_claim_no int, p_candidates jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  max_claims constant int := 6;
  v_attempt app.message_attempts;
  v_message app.messages;
  v_lease   interval := private.claim_lease();
  v_found   jsonb[];
  v_inbox   text;
  v_check   record;
  v_since   timestamptz;
BEGIN
  v_attempt := private.lock_attempt(p_attempt_id);
  IF v_attempt.id IS NULL THEN
    RETURN jsonb_build_object('action', 'skip', 'reason', 'attempt_not_found');
  ELSIF v_attempt.status <> 'claimed' THEN
    -- e.g. a status callback carrying this attempt's id resolved it meanwhile.
    RETURN jsonb_build_object('action', 'skip', 'reason', 'attempt_' || v_attempt.status);
  ELSIF v_attempt.claim_count <> p_claim_no THEN
    RETURN jsonb_build_object('action', 'skip', 'reason', 'stale_claim');
  END IF;
  -- A receipt already in the inbox (not applied yet) settles it: the provider has it.
  SELECT x.provider_message_id INTO v_inbox FROM app.receipts x
   WHERE x.attempt_id = v_attempt.id AND x.message_created_at = v_attempt.message_created_at
   ORDER BY x.id LIMIT 1;
  IF v_inbox IS NOT NULL THEN
    PERFORM private.record_handoffs_locked(
      jsonb_build_array(jsonb_build_object('attempt_id', v_attempt.id, 'provider_message_id', v_inbox)),
      'receipt');
    PERFORM private.log_event(v_attempt.message_id, v_attempt.message_created_at, v_attempt.tenant_id,
                              v_attempt.id, 'reconciled', NULL, NULL, NULL,
                              jsonb_build_object('provider_message_id', v_inbox, 'claim_no', p_claim_no,
                                                 'source', 'receipt_inbox'));
    RETURN jsonb_build_object('action', 'done', 'provider_message_id', v_inbox, 'reason', 'receipt_in_inbox');
  END IF;
  -- Too early: the last call got no answer less than private.reconcile_delay() ago
  -- (app.record_send_error), and the provider may not list the message yet -- an empty
  -- listing now would resend a message it has. End this claim and look again then.
  IF v_attempt.reconcile_after > now() THEN
    UPDATE app.message_attempts SET last_claimed_at = NULL, updated_at = now()
     WHERE id = v_attempt.id AND message_created_at = v_attempt.message_created_at;
    PERFORM private.enqueue_job('send', jsonb_build_object('attempt_id', v_attempt.id),
                                v_attempt.reconcile_after - now());
    PERFORM private.log_event(v_attempt.message_id, v_attempt.message_created_at, v_attempt.tenant_id,
                              v_attempt.id, 'reconcile_ambiguous', NULL, NULL, NULL,
                              jsonb_build_object('claim_no', p_claim_no, 'reason', 'reconcile_delay',
                                                 'until', v_attempt.reconcile_after));
    RETURN jsonb_build_object('action', 'wait', 'reason', 'reconcile_delay');
  END IF;
  SELECT * INTO v_message FROM app.messages
   WHERE id = v_attempt.message_id AND created_at = v_attempt.message_created_at;

  -- A provider Hermes cannot ask (SES, FCM, WhatsApp: no lookup by sender and
  -- recipient; the worker passes NULL): never resend blindly. Wait for a receipt (they
  -- carry the attempt id) for reconcile_window from the first of these waits (every
  -- wait is a reconcile_ambiguous event; a re-claim must not restart the window); then
  -- the hand-off is 'unknown' and the cascade moves on (or the message ends unknown).
  -- Each wait ends its claim (nothing is being sent: the next look need not wait out a
  -- lease) and looks again at the end of the window, or a lease later if that is sooner.
  IF p_candidates IS NULL THEN
    SELECT min(e.created_at) INTO v_since FROM app.message_events e
     WHERE e.message_id = v_attempt.message_id AND e.message_created_at = v_attempt.message_created_at
       AND e.attempt_id = v_attempt.id AND e.event_type = 'reconcile_ambiguous'
       AND e.details ->> 'reason' = 'no_provider_lookup';
    v_since := coalesce(v_since, now());
    IF v_since > now() - private.reconcile_window() THEN
      UPDATE app.message_attempts SET last_claimed_at = NULL, updated_at = now()
       WHERE id = v_attempt.id AND message_created_at = v_attempt.message_created_at;
      PERFORM private.enqueue_job('send', jsonb_build_object('attempt_id', v_attempt.id),
                                  least(v_lease, greatest(v_since + private.reconcile_window() - now(),
                                                          interval '1 second')));
      PERFORM private.log_event(v_attempt.message_id, v_attempt.message_created_at, v_attempt.tenant_id,
                                v_attempt.id, 'reconcile_ambiguous', NULL, NULL, NULL,
                                jsonb_build_object('claim_no', p_claim_no, 'reason', 'no_provider_lookup',
                                                   'waiting_for', 'receipt', 'since', v_since));
      RETURN jsonb_build_object('action', 'wait', 'reason', 'no_provider_lookup');
    END IF;
    UPDATE app.message_attempts
       SET status = 'unknown', error_code = 'handoff_unknown', completed_at = now(), updated_at = now(),
           error_message = 'The provider call''s outcome is unknown and the provider cannot be asked; not resent.'
     WHERE id = v_attempt.id AND message_created_at = v_attempt.message_created_at;
    PERFORM private.log_event(v_attempt.message_id, v_attempt.message_created_at, v_attempt.tenant_id,
                              v_attempt.id, 'receipt_timeout', NULL, NULL, 'handoff_unknown',
                              jsonb_build_object('claim_no', p_claim_no, 'window', private.reconcile_window()::text));
    PERFORM private.settle_attempts(ARRAY[v_attempt.id]);
    RETURN jsonb_build_object('action', 'skip', 'reason', 'handoff_unknown');
  END IF;

  -- Lock every plausible provider id first, in a fixed order, then look for owners.
  PERFORM pg_advisory_xact_lock(hashtextextended(v_attempt.provider || ':' || sid, 0))
     FROM (SELECT DISTINCT c ->> 'sid' AS sid
             FROM jsonb_array_elements(coalesce(p_candidates, '[]')) c
            WHERE c ->> 'sid' IS NOT NULL AND c ->> 'body' = v_attempt.content ->> 'body'
            ORDER BY 1) s;
  SELECT coalesce(array_agg(c ORDER BY c ->> 'sid'), '{}') INTO v_found
    FROM (SELECT DISTINCT ON (c ->> 'sid') c   -- a provider id listed twice is one message
            FROM jsonb_array_elements(coalesce(p_candidates, '[]')) c
           ORDER BY c ->> 'sid') d(c)
   WHERE c ->> 'sid' IS NOT NULL
     AND c ->> 'body' = v_attempt.content ->> 'body'
     AND (c ->> 'date_created' IS NULL
          OR (c ->> 'date_created')::timestamptz >= v_attempt.claimed_at - interval '5 minutes')
     AND NOT EXISTS (SELECT 1 FROM app.message_attempts o
                      WHERE o.provider = v_attempt.provider AND o.provider_message_id = c ->> 'sid');

  IF cardinality(v_found) = 1 THEN
    PERFORM private.log_event(v_attempt.message_id, v_attempt.message_created_at, v_attempt.tenant_id,
                              v_attempt.id, 'reconciled', NULL, v_found[1] ->> 'status', NULL,
                              jsonb_build_object('provider_message_id', v_found[1] ->> 'sid',
                                                 'claim_no', p_claim_no));
    PERFORM app.record_handoff(p_attempt_id, v_found[1] ->> 'sid', v_found[1] ->> 'status');
    RETURN jsonb_build_object('action', 'done', 'provider_message_id', v_found[1] ->> 'sid');
  END IF;

  IF cardinality(v_found) > 1 THEN
    PERFORM private.log_event(v_attempt.message_id, v_attempt.message_created_at, v_attempt.tenant_id,
                              v_attempt.id, 'reconcile_ambiguous', NULL, NULL, NULL,
                              jsonb_build_object('claim_no', p_claim_no,
                                                 'provider_message_ids', (SELECT jsonb_agg(f ->> 'sid') FROM unnest(v_found) f)));
    IF v_attempt.claim_count >= max_claims THEN
      UPDATE app.message_attempts
         SET status = 'failed', error_code = 'reconcile_ambiguous', completed_at = now(), updated_at = now(),
             error_message = 'Could not tell which provider message was this one.'
       WHERE id = v_attempt.id AND message_created_at = v_attempt.message_created_at;
      PERFORM private.settle_attempts(ARRAY[v_attempt.id]);
      RETURN jsonb_build_object('action', 'skip', 'reason', 'reconcile_ambiguous');
    END IF;
    PERFORM private.enqueue_job('send', jsonb_build_object('attempt_id', v_attempt.id), v_lease);
    RETURN jsonb_build_object('action', 'wait', 'reason', 'reconcile_ambiguous');
  END IF;

  -- Not at the provider: a resend is a new hand-off, checked like a first claim.
  PERFORM private.lock_addresses(ARRAY[private.address_hash(v_attempt.to_address)]);
  SELECT * INTO v_check
    FROM private.check_send_eligibility(v_message.tenant_id, v_attempt.channel, v_attempt.to_address,
                                        v_attempt.from_address, v_message.vertical, v_message.category, now());
  -- And its sender, by the claim's rule (private.senders_allowed): still the tenant's.
  IF NOT (SELECT a.allowed FROM private.senders_allowed(ARRAY[ROW(1, v_message.tenant_id, v_attempt.channel, NULL,
            v_attempt.from_address, NULL, NULL, NULL)::private.send_candidate]) a) THEN
    v_check.reasons := jsonb_build_array(jsonb_build_object('code', 'sender_not_allowed', 'channel', v_attempt.channel))
                       || coalesce(CASE WHEN NOT v_check.eligible THEN v_check.reasons END, '[]');
    v_check.eligible := false;
  END IF;
  IF NOT v_check.eligible THEN
    UPDATE app.message_attempts
       SET status = 'rejected', error_code = v_check.reasons -> 0 ->> 'code', reasons = v_check.reasons,
           completed_at = now(), updated_at = now()
     WHERE id = v_attempt.id AND message_created_at = v_attempt.message_created_at;
    PERFORM private.log_event(v_attempt.message_id, v_attempt.message_created_at, v_attempt.tenant_id,
                              v_attempt.id, 'rejected',
                              CASE WHEN NOT EXISTS (SELECT 1 FROM app.message_attempts x
                                                     WHERE x.message_id = v_attempt.message_id
                                                       AND x.message_created_at = v_attempt.message_created_at
                                                       AND x.attempt_no > v_attempt.attempt_no AND x.status = 'waiting')
                                   THEN 'rejected' END, NULL, v_check.reasons -> 0 ->> 'code',
                              jsonb_build_object('stage', 'resend', 'decision', 'rejected',
                                                 'reasons', v_check.reasons, 'claim_no', p_claim_no));
    PERFORM private.settle_attempts(ARRAY[v_attempt.id]);
    RETURN jsonb_build_object('action', 'skip', 'reason', v_check.reasons -> 0 ->> 'code',
                              'reasons', v_check.reasons);
  END IF;
  PERFORM private.log_event(v_attempt.message_id, v_attempt.message_created_at, v_attempt.tenant_id,
                            v_attempt.id, 'resend', 'sending', NULL, NULL,
                            jsonb_build_object('reason', 'provider_has_no_record',
                                               'claim_no', p_claim_no,
                                               'candidates', jsonb_array_length(coalesce(p_candidates, '[]'))));
  -- The worker calls the provider next: this is the resend's calling mark (app.begin_calls).
  UPDATE app.message_attempts SET calling_claim_no = p_claim_no, last_claimed_at = now(), updated_at = now(),
                                  reconcile_after = NULL
   WHERE id = v_attempt.id AND message_created_at = v_attempt.message_created_at;
  RETURN jsonb_build_object('action', 'send', 'reason', 'provider_has_no_record');
END
$$;
COMMENT ON FUNCTION app.reconcile_attempt(uuid, int, jsonb) IS
  'Resolves a re-claimed attempt from a provider listing: record the one match, resend if none, wait if several.';
GRANT EXECUTE ON FUNCTION app.reconcile_attempt(uuid, int, jsonb) TO hermes_worker;
