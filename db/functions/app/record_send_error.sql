-- The provider call did not hand the message off. p_http_status is the provider's
-- answer (NULL when there was none: timeout, connection lost), p_error_code its own
-- code (e.g. Twilio's 21211). p_sent false: the provider was never called (this worker
-- has no adapter, account or sender for it), so it certainly does not have the message.
--   permanent (private.provider_error_is_permanent: the provider refused this message,
--     e.g. Twilio 21211 invalid number, 21610 unsubscribed, 21614 not SMS-capable):
--     the attempt fails, and with it the message, or its cascade moves on to the next
--     step (private.settle_attempts).
--   otherwise (5xx, 429, bad credentials, timeout, connection error): the provider may
--     or may not have it. The attempt stays 'claimed', so the next try reconciles
--     before any resend; a retry job is scheduled with exponential backoff (1 s ..
--     5 min, at least p_retry_after), up to 6 claims. After that the message fails as
--     provider_unavailable. Without an answer (timeout, connection lost; a 5xx at a
--     provider that can be asked) the retry, and any reconcile, waits at least
--     private.reconcile_delay() (minutes): the provider may list the message late.
--   A refusal that means "the recipient opted out" (private.provider_error_is_opt_out,
--     Twilio 21610) also records an opt-out consent event (source provider_error); one
--     that means the address is dead (private.provider_error_suppression, FCM
--     UNREGISTERED) puts it on the tenant's hard_bounce list.
--   Failover: when the provider did not take the message (never called; 429 or 5xx; any
--     answer at a provider that cannot be asked) for the second time and the tenant routes
--     the channel through another provider after it, the step moves there (pending, sent
--     at once, event 'failover'). Timeouts never fail over.
-- Returns {action: failed|retry_scheduled|failover|skip, ...}.
DROP FUNCTION IF EXISTS app.record_send_error(uuid, int, text, text, int, interval);
CREATE OR REPLACE FUNCTION app.record_send_error(
  p_attempt_id uuid, p_claim_no int, p_error_code text, p_error_message text,
  p_http_status int, p_retry_after interval DEFAULT NULL, p_sent boolean DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  max_claims constant int := 6;
  v_attempt app.message_attempts;
  v_delay   interval;
  v_code    text;
  v_permanent boolean;
  v_list    text;
  v_next    text;
  v_pending boolean;
  v_unanswered boolean;
BEGIN
  v_attempt := private.lock_attempt(p_attempt_id);
  IF v_attempt.id IS NULL THEN
    RETURN jsonb_build_object('action', 'skip', 'reason', 'attempt_not_found');
  ELSIF v_attempt.status <> 'claimed' OR v_attempt.claim_count <> p_claim_no THEN
    RETURN jsonb_build_object('action', 'skip', 'reason', 'not_current_claim');
  END IF;
  v_code := v_attempt.provider || ':' || coalesce(p_error_code, 'unknown');
  v_permanent := private.provider_error_is_permanent(v_attempt.provider, p_http_status, p_error_code);

  PERFORM private.log_event(v_attempt.message_id, v_attempt.message_created_at, v_attempt.tenant_id,
                            v_attempt.id, 'send_error', NULL, NULL, v_code,
                            jsonb_build_object('permanent', v_permanent, 'http_status', p_http_status,
                                               'claim_no', p_claim_no,
                                               'message', left(p_error_message, 500)));

  -- Failover: the provider did not take the message (it was never called; or it
  -- answered 429 or 5xx -- at a provider that cannot be asked, any answer) for the second
  -- time, and the tenant routes the channel through another provider after this one
  -- (app.tenant_policies.channel_providers): the step moves there, pending, and is sent
  -- at once. A timeout (no answer) never fails over: the first provider may have it.
  -- Nor does a call this worker had no free connection for (no_free_connection,
  -- workers/providers/base.py Slots): never sent, but no fault of the provider's.
  IF NOT v_permanent
     AND (p_sent IS FALSE AND p_error_code IS DISTINCT FROM 'no_free_connection'
          OR (p_http_status IS NOT NULL
              AND (p_http_status IN (429, 503)
                   OR (p_http_status >= 500 OR p_http_status = 200)
                      AND NOT coalesce((SELECT p.lookups FROM private.providers p
                                         WHERE p.provider = v_attempt.provider), true)))) THEN
    SELECT r.next INTO v_next
      FROM app.tenant_policies tp
     CROSS JOIN LATERAL (
       SELECT l.value #>> '{}' AS next
         FROM jsonb_array_elements(tp.channel_providers -> v_attempt.channel) WITH ORDINALITY l(value, n)
        WHERE l.n > (SELECT c.n FROM jsonb_array_elements(tp.channel_providers -> v_attempt.channel)
                                     WITH ORDINALITY c(value, n)
                      WHERE c.value #>> '{}' = v_attempt.provider)
        ORDER BY l.n LIMIT 1) r
     WHERE tp.tenant_id = v_attempt.tenant_id;
    IF v_next IS NOT NULL AND (p_sent IS FALSE AND p_error_code IS DISTINCT FROM 'no_free_connection' OR (
         SELECT count(*) FROM app.message_events e
          WHERE e.message_id = v_attempt.message_id AND e.message_created_at = v_attempt.message_created_at
            AND e.attempt_id = v_attempt.id AND e.event_type = 'send_error'
            AND e.error_code LIKE v_attempt.provider || ':%') >= 2) THEN
      UPDATE app.message_attempts
         SET provider = v_next, status = 'pending', last_claimed_at = NULL, calling_claim_no = NULL,
             updated_at = now(),
             provider_account_id = (SELECT pa.id FROM app.provider_accounts pa
                                      JOIN app.tenants t ON t.id = pa.tenant_id
                                     WHERE pa.tenant_id = v_attempt.tenant_id AND pa.provider = v_next
                                       AND pa.disabled_at IS NULL AND t.environment <> 'sandbox')
       WHERE id = v_attempt.id AND message_created_at = v_attempt.message_created_at;
      PERFORM private.enqueue_job('send', jsonb_build_object('attempt_id', v_attempt.id), interval '0');
      PERFORM private.log_event(v_attempt.message_id, v_attempt.message_created_at, v_attempt.tenant_id,
                                v_attempt.id, 'failover', NULL, NULL, v_code,
                                jsonb_build_object('from', v_attempt.provider, 'to', v_next,
                                                   'claim_no', p_claim_no));
      RETURN jsonb_build_object('action', 'failover', 'provider', v_next);
    END IF;
  END IF;

  IF v_permanent OR v_attempt.claim_count >= max_claims THEN
    IF NOT v_permanent THEN
      v_code := 'provider_unavailable';
    END IF;
    UPDATE app.message_attempts
       SET status = 'failed', error_code = v_code, error_message = left(p_error_message, 500),
           completed_at = now(), updated_at = now()
     WHERE id = v_attempt.id AND message_created_at = v_attempt.message_created_at;
    -- The message fails, or its cascade moves on to the next step.
    PERFORM private.settle_attempts(ARRAY[v_attempt.id]);
    -- The provider says the recipient opted out (Twilio 21610: they replied STOP to this
    -- sender): that is consent, recorded like any opt-out, so that nothing else is
    -- attempted to them on this channel.
    IF private.provider_error_is_opt_out(v_attempt.provider, p_error_code) THEN
      PERFORM private.record_consents(v_attempt.tenant_id, NULL, jsonb_build_array(jsonb_build_object(
        'address', v_attempt.to_address, 'kind', 'opt_out', 'channel', v_attempt.channel, 'source', 'provider_error',
        'evidence', jsonb_build_object('provider', v_attempt.provider, 'error_code', p_error_code,
                                       'attempt_id', v_attempt.id, 'message', left(p_error_message, 200)))));
    END IF;
    -- A refusal that says the address is dead (FCM UNREGISTERED) lists it.
    v_list := private.provider_error_suppression(v_attempt.provider, p_error_code);
    IF v_list IS NOT NULL AND private.address_key(v_attempt.to_address) IS NOT NULL THEN
      PERFORM private.record_suppressions(v_attempt.tenant_id, NULL, 'add', v_list,
                                          jsonb_build_array(v_attempt.to_address),
                                          format('%s %s', v_attempt.provider, p_error_code), 'bounce');
    END IF;
    RETURN jsonb_build_object('action', 'failed', 'error_code', v_code);
  END IF;

  -- This claim's call is over: the retry need not wait out its lease. A provider that
  -- cannot be asked (private.providers.lookups) but answered with an error (5xx, 429)
  -- did not take the message: the attempt is pending again and the retry sends (after
  -- the eligibility check of a claim); so does one that was never called (p_sent false). Without an answer (a timeout) it stays claimed:
  -- the retry waits for a receipt and never resends blindly (app.reconcile_attempt).
  -- No answer (a timeout, a lost connection; a 5xx where the provider can be asked): the
  -- provider may have created the message and lists it only later. The attempt is not
  -- reconciled before private.reconcile_delay() (minutes): a lookup a second from now
  -- would find nothing and resend it (app.reconcile_attempt waits until reconcile_after).
  v_pending := p_sent IS FALSE
               OR (p_http_status IS NOT NULL
                   AND NOT coalesce((SELECT p.lookups FROM private.providers p
                                      WHERE p.provider = v_attempt.provider), true));
  v_unanswered := NOT v_pending AND (p_http_status IS NULL OR p_http_status >= 500);
  UPDATE app.message_attempts
     SET last_claimed_at = NULL, updated_at = now(),
         -- an answer (a refusal: 4xx, 429) says the provider did not take it: no delay
         reconcile_after = CASE WHEN v_unanswered THEN now() + private.reconcile_delay() END,
         status = CASE WHEN p_sent IS FALSE
                         OR (p_http_status IS NOT NULL
                             AND NOT coalesce((SELECT p.lookups FROM private.providers p
                                                WHERE p.provider = v_attempt.provider), true))
                       THEN 'pending' ELSE status END,
         calling_claim_no = CASE WHEN p_sent IS FALSE
                                   OR (p_http_status IS NOT NULL
                                       AND NOT coalesce((SELECT p.lookups FROM private.providers p
                                                          WHERE p.provider = v_attempt.provider), true))
                                 THEN NULL ELSE calling_claim_no END
   WHERE id = v_attempt.id AND message_created_at = v_attempt.message_created_at;
  v_delay := greatest(coalesce(p_retry_after, interval '0'),
                      least(interval '1 second' * power(2, v_attempt.claim_count - 1), interval '5 minutes'),
                      CASE WHEN v_unanswered THEN private.reconcile_delay() ELSE interval '0' END);
  PERFORM private.enqueue_job('send', jsonb_build_object('attempt_id', v_attempt.id), v_delay);
  PERFORM private.log_event(v_attempt.message_id, v_attempt.message_created_at, v_attempt.tenant_id,
                            v_attempt.id, 'retry_scheduled', NULL, NULL, v_code,
                            jsonb_build_object('delay_seconds', extract(epoch FROM v_delay)));
  RETURN jsonb_build_object('action', 'retry_scheduled', 'delay_seconds', extract(epoch FROM v_delay));
END
$$;
COMMENT ON FUNCTION app.record_send_error(uuid, int, text, text, int, interval, boolean) IS
  'Records a failed provider call: permanent -> failed; transient -> reconcile-first retry with backoff.';
GRANT EXECUTE ON FUNCTION app.record_send_error(uuid, int, text, text, int, interval, boolean) TO hermes_worker;
