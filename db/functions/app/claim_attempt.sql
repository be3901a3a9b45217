-- A worker's first call for a batch of send jobs: locks the attempts (in id order)
-- and decides, for each, in one transaction:
--   send       pending -> claimed: call the provider, then app.record_handoffs
--   reconcile  it was claimed before, a provider call was begun (app.begin_calls) and
--              no hand-off was recorded (a worker died mid-call or a call failed
--              ambiguously): the provider may or may not have it. Look it up there and
--              call app.reconcile_attempt -- never resend blindly. A claim that never
--              began its call is released first (event 'released') and sent.
--   skip       nothing to do (already handed off, finished, unknown attempt), or the
--              message is rejected here: the tenant was suspended, the recipient is
--              no longer eligible (private.send_eligibility: opted out, suppressed...),
--              or the sender is no longer the tenant's (private.senders_allowed)
--   defer      it was claimed less than the claim lease ago (private.settings
--              claim_lease): that worker may still be talking to the provider. A new
--              job is scheduled for when the lease ends; this one has nothing to do.
--              Likewise (reason reconcile_delay) until its reconcile_after: its last
--              call got no answer too recently for the provider to list it.
--              Or (reason quiet_hours) the recipient's quiet hours: the message is
--              'scheduled' and a job is due at next_allowed_at.
-- claim_no (claim_count after this claim) fences workers: only the latest claim may
-- reconcile. The compliance re-check at hand-off happens here for every pending
-- attempt, under the recipients' address locks (private.lock_addresses, the lock an
-- opt-out takes too), taken in a statement before the check: an opt-out committed
-- before this claim took the lock is seen, one that commits later waited for this
-- claim. (A re-claimed attempt is checked by app.reconcile_attempt before any resend.)
-- Returns a JSON array, one decision per distinct attempt id:
--   {action, reason?, attempt_id, claim_no, message_id, provider, to, from, body, first_claimed_at}
CREATE OR REPLACE FUNCTION app.claim_attempts(p_attempt_ids uuid[])
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_lease interval := private.claim_lease();
  v_decisions jsonb;
  v_pending_ids uuid[];
  v_candidates private.send_candidate[];
  v_ineligible jsonb;
BEGIN
  PERFORM private.lock_attempts(p_attempt_ids);
  -- A receipt in the inbox proves the provider has a claimed attempt even before the
  -- applier got to it: record the hand-off from it now, so that the attempt is never
  -- reconciled (let alone resent) as if the provider might not have it.
  PERFORM private.record_handoffs_locked(
    (SELECT jsonb_agg(jsonb_build_object('attempt_id', a.id, 'provider_message_id', r.provider_message_id))
       FROM app.message_attempts a
      CROSS JOIN LATERAL (SELECT x.provider_message_id FROM app.receipts x
                           WHERE x.attempt_id = a.id AND x.message_created_at = a.message_created_at
                           ORDER BY x.id LIMIT 1) r
      WHERE a.id = ANY(p_attempt_ids)
        AND a.message_created_at = ANY(ARRAY(SELECT DISTINCT private.uuid7_time(i) FROM unnest(p_attempt_ids) i))
        AND a.status = 'claimed' AND a.provider_message_id IS NULL),
    'receipt');

  -- Claimed before, but no claim ever began its provider call (app.begin_calls): the
  -- worker died between its claim and the call, so the provider cannot have it. Once the
  -- lease is over it is pending again (event 'released'), and below it is claimed like
  -- a first claim -- eligibility checked -- and sent, not reconciled.
  WITH released AS (
    UPDATE app.message_attempts a
       SET status = 'pending', updated_at = now()
     WHERE a.id = ANY(p_attempt_ids)
       AND a.message_created_at = ANY(ARRAY(SELECT DISTINCT private.uuid7_time(i) FROM unnest(p_attempt_ids) i))
       AND a.status = 'claimed' AND a.calling_claim_no IS NULL AND a.provider_message_id IS NULL
       AND (a.last_claimed_at IS NULL OR a.last_claimed_at <= now() - v_lease)
    RETURNING a.id, a.message_id, a.message_created_at, a.tenant_id, a.claim_count
  )
  INSERT INTO app.message_events (message_created_at, message_id, tenant_id, attempt_id, event_type, details)
  SELECT r.message_created_at, r.message_id, r.tenant_id, r.id, 'released',
         jsonb_build_object('claim_no', r.claim_count, 'reason', 'never_called')
    FROM released r;

  -- The pending attempts' recipients: lock their addresses, then (next statement, so
  -- with a snapshot taken after the locks) check their eligibility.
  SELECT array_agg(x.id ORDER BY x.n),
         array_agg(ROW(x.n, x.tenant_id, x.channel, x.to_address, x.from_address, m.vertical,
                       m.category, m.id)::private.send_candidate ORDER BY x.n)
    INTO v_pending_ids, v_candidates
    FROM (SELECT a.id, a.message_id, a.message_created_at, a.tenant_id, a.channel, a.to_address, a.from_address,
                 row_number() OVER (ORDER BY a.id)::int AS n
            FROM app.message_attempts a
           WHERE a.id = ANY(p_attempt_ids)
             AND a.message_created_at = ANY(ARRAY(SELECT DISTINCT private.uuid7_time(i) FROM unnest(p_attempt_ids) i))
             AND a.status = 'pending' AND a.to_address IS NOT NULL) x
    JOIN app.messages m ON m.id = x.message_id AND m.created_at = x.message_created_at;
  PERFORM private.lock_addresses(ARRAY(SELECT private.address_hash(c.to_address) FROM unnest(v_candidates) c));
  -- {attempt id: {reasons, next_allowed_at}} of the ones that may not go now: rejected,
  -- or deferred when only quiet hours stand in the way (next_allowed_at set).
  SELECT coalesce(jsonb_object_agg(v_pending_ids[e.idx],
                    jsonb_build_object('reasons', e.reasons, 'next_allowed_at', e.next_allowed_at))
                    FILTER (WHERE NOT e.eligible), '{}')
    INTO v_ineligible
    FROM private.send_eligibility(coalesce(v_candidates, '{}'), now()) e;
  -- Their senders, by the intake's rule (private.senders_allowed): a step whose sender
  -- is no longer the tenant's (reassigned, suspended, released since its intake) is
  -- rejected, reason sender_not_allowed, and its cascade moves on.
  SELECT v_ineligible || coalesce(jsonb_object_agg(v_pending_ids[a.idx], jsonb_build_object(
           'reasons', jsonb_build_array(jsonb_build_object('code', 'sender_not_allowed',
                                                           'channel', v_candidates[a.idx].channel))
                      || coalesce(v_ineligible #> ARRAY[v_pending_ids[a.idx]::text, 'reasons'], '[]'))), '{}')
    INTO v_ineligible
    FROM private.senders_allowed(coalesce(v_candidates, '{}')) a
   WHERE NOT a.allowed;

  WITH wanted AS (
    SELECT DISTINCT i AS id, private.uuid7_time(i) AS created FROM unnest(p_attempt_ids) i
  ), classified AS (
    SELECT w.id, a.message_created_at, a.message_id, a.tenant_id, a.claim_count, a.last_claimed_at,
           -- a deferral lasts until the lease is over and the reconcile delay too
           greatest(a.last_claimed_at + v_lease, a.reconcile_after) AS defer_until,
           a.status, t.environment,
           CASE WHEN a.id IS NULL THEN 'skip'
                WHEN a.status NOT IN ('pending', 'claimed') THEN 'skip'
                WHEN a.status = 'claimed' AND a.last_claimed_at > now() - v_lease THEN 'defer'
                -- its last call got no answer (or its worker died mid-call) too recently:
                -- the provider may not list it yet (app.reconcile_attempt would only wait)
                WHEN a.status = 'claimed' AND a.reconcile_after > now() THEN 'defer'
                WHEN a.status = 'pending' AND t.status <> 'active' THEN 'reject'
                -- no address (a step stored before intake rejected those): never sent
                WHEN a.status = 'pending' AND a.to_address IS NULL THEN 'reject'
                WHEN a.status = 'pending' AND v_ineligible #>> ARRAY[a.id::text, 'next_allowed_at'] IS NOT NULL
                  THEN 'wait'
                WHEN a.status = 'pending' AND v_ineligible ? a.id::text THEN 'reject'
                ELSE 'claim' END AS decision,
           CASE WHEN t.status <> 'active' THEN '[{"code": "tenant_suspended"}]'::jsonb
                WHEN a.to_address IS NULL THEN jsonb_build_array(jsonb_build_object(
                       'code', 'missing_address', 'channel', a.channel))
                ELSE v_ineligible #> ARRAY[a.id::text, 'reasons'] END AS reasons,
           (v_ineligible #>> ARRAY[a.id::text, 'next_allowed_at'])::timestamptz AS next_allowed_at,
           private.rules_in_force(tp.version) AS rules
      FROM wanted w
      LEFT JOIN app.message_attempts a ON a.id = w.id AND a.message_created_at = w.created
      LEFT JOIN app.tenants t ON t.id = a.tenant_id
      LEFT JOIN app.tenant_policies tp ON tp.tenant_id = a.tenant_id
  ), deferred AS (
    SELECT c.*, c.defer_until - now() AS wait FROM classified c WHERE c.decision = 'defer'
  ), defer_events AS (
    INSERT INTO app.message_events (message_created_at, message_id, tenant_id, attempt_id, event_type, details)
    SELECT d.message_created_at, d.message_id, d.tenant_id, d.id, 'reclaim_deferred',
           jsonb_build_object('wait_seconds', extract(epoch FROM d.wait), 'claim_no', d.claim_count)
      FROM deferred d
  ), waiting AS (
    -- Quiet hours: the attempt stays pending, its message is scheduled, and a job is
    -- due when the window opens (enqueued below); checked again then.
    UPDATE app.messages m
       SET status = CASE WHEN private.message_status_rank(m.status) < private.message_status_rank('sent')
                         THEN 'scheduled' ELSE m.status END,
           scheduled_at = c.next_allowed_at, reasons = c.reasons, updated_at = now()
      FROM classified c
     WHERE c.decision = 'wait' AND m.id = c.message_id AND m.created_at = c.message_created_at
    RETURNING m.id
  ), wait_events AS (
    INSERT INTO app.message_events (message_created_at, message_id, tenant_id, attempt_id, event_type,
                                    status, error_code, details)
    SELECT c.message_created_at, c.message_id, c.tenant_id, c.id, 'deferred', 'scheduled',
           c.reasons -> 0 ->> 'code',
           jsonb_build_object('stage', 'claim', 'decision', 'deferred', 'reasons', c.reasons,
                              'next_allowed_at', c.next_allowed_at, 'rules', c.rules)
      FROM classified c WHERE c.decision = 'wait'
  ), rejected AS (
    -- The step may not go: rejected with its reasons; the message is rejected, or its
    -- cascade moves on (private.settle_attempts, after this statement).
    UPDATE app.message_attempts a
       SET status = 'rejected', error_code = c.reasons -> 0 ->> 'code', reasons = c.reasons,
           error_message = CASE WHEN c.reasons -> 0 ->> 'code' = 'tenant_suspended'
                                THEN 'The tenant was suspended before hand-off.'
                                WHEN c.reasons -> 0 ->> 'code' = 'missing_address'
                                THEN 'Not sent: no address for this channel.'
                                WHEN c.reasons -> 0 ->> 'code' = 'sender_not_allowed'
                                THEN 'Not sent: the sender is no longer the tenant''s (see the sender registry).'
                                ELSE 'Not sent: the recipient was no longer eligible at hand-off (see reasons).' END,
           completed_at = now(), updated_at = now()
      FROM classified c
     WHERE c.decision = 'reject' AND a.id = c.id AND a.message_created_at = c.message_created_at
    RETURNING a.id, a.message_id, a.message_created_at, a.tenant_id, a.attempt_no, c.reasons, c.rules
  ), rejected_events AS (
    INSERT INTO app.message_events (message_created_at, message_id, tenant_id, attempt_id, event_type,
                                    status, error_code, details)
    SELECT r.message_created_at, r.message_id, r.tenant_id, r.id, 'rejected',
           CASE WHEN NOT EXISTS (SELECT 1 FROM app.message_attempts x
                                  WHERE x.message_id = r.message_id AND x.message_created_at = r.message_created_at
                                    AND x.attempt_no > r.attempt_no AND x.status = 'waiting')
                THEN 'rejected' END,
           r.reasons -> 0 ->> 'code',
           jsonb_build_object('stage', 'claim', 'decision', 'rejected', 'step', r.attempt_no,
                              'reasons', r.reasons, 'rules', r.rules)
      FROM rejected r
  ), claimed AS (
    UPDATE app.message_attempts a
       SET status = 'claimed', claim_count = a.claim_count + 1,
           claimed_at = coalesce(a.claimed_at, now()), last_claimed_at = now(), updated_at = now()
      FROM classified c
     WHERE c.decision = 'claim' AND a.id = c.id AND a.message_created_at = c.message_created_at
    RETURNING a.id, a.message_id, a.message_created_at, a.tenant_id, a.provider, a.claim_count, a.claimed_at,
              a.channel, a.to_address, a.from_address, a.content, a.attempt_no, a.provider_account_id
  ), claimed_messages AS (
    UPDATE app.messages m
       SET status = 'sending', reasons = NULL, updated_at = now()
      FROM claimed c
     WHERE m.id = c.message_id AND m.created_at = c.message_created_at
       AND private.message_status_rank(m.status) < private.message_status_rank('sending')
  ), contacts AS (
    -- The claim records the contact, in its own transaction, under the address lock:
    -- the cooldown store a later claim to the same recipient reads.
    INSERT INTO app.contact_history AS h (tenant_id, address_hash, vertical, last_contact_at, last_message_id,
                                          from_address)
    SELECT DISTINCT ON (k.tenant_id, private.address_hash(k.to_address), m.vertical)
           k.tenant_id, private.address_hash(k.to_address), m.vertical, now(), m.id, k.from_address
      FROM claimed k
      JOIN app.messages m ON m.id = k.message_id AND m.created_at = k.message_created_at
     WHERE k.claim_count = 1 AND m.category = 'marketing' AND m.vertical IS NOT NULL
       AND k.to_address IS NOT NULL
     ORDER BY k.tenant_id, private.address_hash(k.to_address), m.vertical, k.id
    ON CONFLICT (tenant_id, address_hash, vertical) DO UPDATE
      SET last_contact_at = excluded.last_contact_at, last_message_id = excluded.last_message_id,
          from_address = excluded.from_address, source = 'send'
  ), claimed_events AS (
    INSERT INTO app.message_events (message_created_at, message_id, tenant_id, attempt_id, event_type,
                                    status, details)
    SELECT c.message_created_at, c.message_id, c.tenant_id, c.id,
           CASE WHEN c.claim_count = 1 THEN 'claimed' ELSE 'reclaimed' END, 'sending',
           -- a first claim is an eligibility decision: it records the rules it was made under
           CASE WHEN c.claim_count = 1 THEN jsonb_build_object('claim_no', c.claim_count, 'rules', k.rules)
                ELSE jsonb_build_object('claim_no', c.claim_count) END
      FROM claimed c JOIN classified k ON k.id = c.id
  )
  SELECT coalesce(jsonb_agg(
           CASE c.decision
             WHEN 'claim' THEN jsonb_build_object(
               -- pending: nothing was handed off (a first claim, or a provider that answered
               -- with an error); claimed before: the provider may have it, reconcile first
               'action', CASE WHEN c.status = 'pending' THEN 'send' ELSE 'reconcile' END,
               'attempt_id', k.id, 'claim_no', k.claim_count, 'message_id', k.message_id,
               'provider', k.provider, 'channel', k.channel, 'to', k.to_address, 'from', k.from_address,
               'body', k.content ->> 'body', 'content', k.content, 'step', k.attempt_no,
               'first_claimed_at', k.claimed_at,
               -- through which account: the tenant's own (provider_account_id), or the
               -- deployment's; a sandbox tenant's always through the simulators
               'provider_account_id', k.provider_account_id, 'environment', c.environment)
             WHEN 'defer' THEN jsonb_build_object(
               'action', 'defer', 'attempt_id', c.id,
               'reason', CASE WHEN c.last_claimed_at > now() - v_lease THEN 'claim_lease' ELSE 'reconcile_delay' END,
               'wait_seconds', extract(epoch FROM c.defer_until - now()))
             WHEN 'reject' THEN jsonb_build_object('action', 'skip', 'reason', c.reasons -> 0 ->> 'code',
                                                   'reasons', c.reasons, 'attempt_id', c.id)
             WHEN 'wait' THEN jsonb_build_object('action', 'defer', 'reason', 'quiet_hours', 'attempt_id', c.id,
                                                 'next_allowed_at', c.next_allowed_at)
             ELSE jsonb_build_object('action', 'skip', 'attempt_id', c.id,
                                     'reason', coalesce('attempt_' || c.status, 'attempt_not_found'))
           END ORDER BY c.id), '[]')
    INTO v_decisions
    FROM classified c
    LEFT JOIN claimed k ON k.id = c.id;
  -- Deferred claims get a job for when the lease ends, or the quiet hours do.
  PERFORM private.enqueue_jobs('send',
            array_agg(jsonb_build_object('attempt_id', d ->> 'attempt_id')),
            array_agg(coalesce((d ->> 'next_allowed_at')::timestamptz,
                               now() + (d ->> 'wait_seconds')::float8 * interval '1 second')))
     FROM jsonb_array_elements(v_decisions) d
    WHERE d ->> 'action' = 'defer'
   HAVING count(*) > 0;
  -- Rejected steps: the message is rejected, or its cascade moves on.
  PERFORM private.settle_attempts(ARRAY(
    SELECT (d ->> 'attempt_id')::uuid FROM jsonb_array_elements(v_decisions) d
     WHERE d ->> 'action' = 'skip' AND d ? 'reasons'));
  RETURN v_decisions;
END
$$;
COMMENT ON FUNCTION app.claim_attempts(uuid[]) IS
  'Claims a batch of send attempts for a worker: one decision per attempt (send|reconcile|skip|defer).';
GRANT EXECUTE ON FUNCTION app.claim_attempts(uuid[]) TO hermes_worker;

-- One attempt: app.claim_attempts with one element (tests, operators).
CREATE OR REPLACE FUNCTION app.claim_attempt(p_attempt_id uuid)
RETURNS jsonb
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT app.claim_attempts(ARRAY[p_attempt_id]) -> 0
$$;
COMMENT ON FUNCTION app.claim_attempt(uuid) IS
  'Claims one send attempt for a worker: {action: send|reconcile|skip|defer, claim_no, to, from, body, ...}.';
GRANT EXECUTE ON FUNCTION app.claim_attempt(uuid) TO hermes_worker;
