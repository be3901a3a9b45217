-- The receipt consumer: applies up to p_limit pending receipts of the inbox
-- (private.receipt_queue -> app.receipts) to their attempts and messages, set-based,
-- in one transaction, and returns {applied, attempts_changed, handoffs_recorded}.
-- Run in a loop by the workers; one applier at a time (an advisory lock: a second
-- caller returns {busy: true} at once instead of queuing on the same rows).
--   * every receipt becomes a 'provider_status' event of its message;
--   * a receipt for an attempt whose hand-off was never recorded (the callback beat
--     the worker, or the worker died after the provider accepted it) records that
--     hand-off: the provider has it, no resend will happen;
--   * a receipt whose provider id is not the attempt's is logged, never applied;
--   * per attempt, one status applies: the highest-ranked one (the first of equal
--     rank, by arrival), and only if it outranks what the attempt has. So statuses only
--     move forward, of two final ones of equal rank the first wins (Twilio), a
--     higher-ranked final one corrects a lower one (SES: Bounce after Delivery), and
--     late or duplicate receipts change nothing, in whatever order and batches they
--     arrive;
--   * what a final status means for the message -- delivered, the cascade's next step,
--     failed, a correction, a late receipt -- is private.settle_attempts';
--   * an SES hard bounce or complaint lists the address (hard_bounce, complaint).
CREATE OR REPLACE FUNCTION app.apply_receipts(p_limit int DEFAULT 1000)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_batch    app.receipts[];
  v_handoffs bigint;
  v_changed  bigint;
  v_ids      uuid[];
  v_ended    uuid[];
  v_fact     record;
BEGIN
  IF NOT pg_try_advisory_xact_lock(hashtextextended('hermes.apply_receipts', 0)) THEN
    RETURN jsonb_build_object('applied', 0, 'busy', true);
  END IF;
  WITH taken AS (
    DELETE FROM private.receipt_queue q
     WHERE q.receipt_id IN (SELECT receipt_id FROM private.receipt_queue
                             ORDER BY receipt_id LIMIT greatest(p_limit, 0))
    RETURNING q.receipt_id, q.message_created_at
  )
  SELECT coalesce(array_agg(r ORDER BY r.id), '{}') INTO v_batch
    FROM taken t JOIN app.receipts r ON r.id = t.receipt_id AND r.message_created_at = t.message_created_at
   WHERE r.id = ANY(ARRAY(SELECT receipt_id FROM taken))
     AND r.message_created_at = ANY(ARRAY(SELECT DISTINCT message_created_at FROM taken));
  IF cardinality(v_batch) = 0 THEN
    RETURN jsonb_build_object('applied', 0);
  END IF;

  -- The statements below join the batch (unnest of an array: a small estimate, so
  -- nested loops over each partition's primary key) to attempts and messages.
  v_ids := ARRAY(SELECT DISTINCT b.attempt_id FROM unnest(v_batch) b);
  PERFORM private.lock_attempts(v_ids);

  v_handoffs := private.record_handoffs_locked(
    (SELECT jsonb_agg(jsonb_build_object('attempt_id', b.attempt_id,
                                         'provider_message_id', b.provider_message_id) ORDER BY b.id)
       FROM unnest(v_batch) b),
    'receipt');

  INSERT INTO app.message_events (message_created_at, message_id, tenant_id, attempt_id, event_type,
                                  provider_status, error_code, details, dedupe_key)
  SELECT b.message_created_at, a.message_id, a.tenant_id, a.id, 'provider_status', b.provider_status,
         CASE WHEN a.provider_message_id <> b.provider_message_id THEN 'provider_message_id_mismatch'
              WHEN b.error_code IS NOT NULL THEN b.provider || ':' || b.error_code END,
         jsonb_build_object('provider_message_id', b.provider_message_id, 'source', b.source,
                            'receipt_id', b.id, 'known_status', s.rank IS NOT NULL),
         b.provider || ':' || b.provider_message_id || ':' || b.provider_status
    FROM unnest(v_batch) b
    JOIN app.message_attempts a ON a.id = b.attempt_id AND a.message_created_at = b.message_created_at
    LEFT JOIN private.provider_statuses s ON s.provider = b.provider AND s.status = b.provider_status
   ORDER BY b.id
  ON CONFLICT (message_id, message_created_at, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING;

  WITH candidates AS (
    SELECT b.id, b.attempt_id, b.message_created_at, b.provider, b.provider_status,
           CASE WHEN b.error_code IS NOT NULL THEN b.provider || ':' || b.error_code END AS error_code,
           b.error_message, s.rank, s.message_status
      FROM unnest(v_batch) b
      JOIN private.provider_statuses s ON s.provider = b.provider AND s.status = b.provider_status
      JOIN app.message_attempts a ON a.id = b.attempt_id AND a.message_created_at = b.message_created_at
     WHERE a.provider_message_id = b.provider_message_id
  ), chosen AS (
    SELECT DISTINCT ON (c.attempt_id) c.*
      FROM candidates c
     ORDER BY c.attempt_id, c.rank DESC, c.id
  ), attempts AS (
    -- A status applies if it outranks the attempt's; a final one (>= 100) also to an
    -- attempt that is final already (a higher-ranked final status corrects it) or timed
    -- out (a late receipt still lands).
    UPDATE app.message_attempts a
       SET provider_status = c.provider_status,
           provider_status_rank = c.rank,
           status = CASE WHEN c.rank >= 100 THEN c.message_status
                         WHEN a.status IN ('pending', 'claimed') THEN 'handed_off'
                         ELSE a.status END,
           error_code = CASE WHEN c.rank >= 100 AND c.message_status = 'delivered' THEN a.error_code
                             ELSE coalesce(c.error_code, a.error_code) END,
           error_message = CASE WHEN c.rank >= 100 AND c.message_status = 'delivered' THEN a.error_message
                                ELSE coalesce(c.error_message, a.error_message) END,
           completed_at = CASE WHEN c.rank >= 100 THEN coalesce(a.completed_at, now()) ELSE a.completed_at END,
           updated_at = now()
      FROM chosen c
     WHERE a.id = c.attempt_id AND a.message_created_at = c.message_created_at
       AND c.rank > a.provider_status_rank
       AND a.status NOT IN ('rejected', 'unknown', 'canceled', 'waiting')
       -- final by a receipt, not by Hermes (a refused send, an ambiguous reconcile)
       AND (a.status NOT IN ('delivered', 'undelivered', 'failed') OR a.provider_status_rank >= 100)
    RETURNING a.id, a.message_id, a.message_created_at, a.provider, a.provider_message_id, a.attempt_no,
              c.rank, c.message_status
  ), messages AS (
    -- A status short of final moves the message forward if this is its current step;
    -- what a final one means is the cascade's (private.settle_attempts, below).
    UPDATE app.messages m
       SET status = a.message_status,
           provider = coalesce(a.provider, m.provider),
           provider_message_id = coalesce(m.provider_message_id, a.provider_message_id),
           updated_at = now(),
           sent_at = coalesce(m.sent_at, now())
      FROM attempts a
     WHERE a.rank < 100 AND m.id = a.message_id AND m.created_at = a.message_created_at
       AND m.current_step = a.attempt_no
       AND private.message_status_rank(a.message_status) > private.message_status_rank(m.status)
    RETURNING m.id
  )
  SELECT (SELECT count(*) FROM attempts), ARRAY(SELECT a.id FROM attempts a WHERE a.rank >= 100)
    INTO v_changed, v_ended;
  PERFORM private.settle_attempts(v_ended);

  -- Receipts that are compliance facts: a hard bounce puts the address on the tenant's
  -- hard_bounce list, a complaint on its complaint list (the eligibility check refuses
  -- both from then on, on every channel the address is used on).
  FOR v_fact IN
    SELECT a.tenant_id, CASE WHEN b.provider_status = 'Complaint' THEN 'complaint' ELSE 'hard_bounce' END AS list,
           jsonb_agg(DISTINCT a.to_address) AS addresses
      FROM unnest(v_batch) b
      JOIN app.message_attempts a ON a.id = b.attempt_id AND a.message_created_at = b.message_created_at
     WHERE b.provider = 'ses' AND a.provider_message_id = b.provider_message_id AND a.to_address IS NOT NULL
       AND a.to_address <> '[erased]'   -- erased: the tombstone refuses it already
       AND ((b.provider_status = 'Bounce' AND b.error_code LIKE 'Permanent:%') OR b.provider_status = 'Complaint')
     GROUP BY 1, 2
     ORDER BY 1, 2
  LOOP
    PERFORM private.record_suppressions(v_fact.tenant_id, NULL, 'add', v_fact.list, v_fact.addresses,
                                        format('SES %s', CASE v_fact.list WHEN 'complaint' THEN 'complaint'
                                                                          ELSE 'hard bounce' END),
                                        CASE v_fact.list WHEN 'complaint' THEN 'complaint' ELSE 'bounce' END);
  END LOOP;

  RETURN jsonb_build_object('applied', cardinality(v_batch), 'attempts_changed', v_changed,
                            'handoffs_recorded', v_handoffs);
END
$$;
COMMENT ON FUNCTION app.apply_receipts(int) IS
  'Applies pending inbox receipts set-based: events, unrecorded hand-offs, monotonic statuses, the cascade (private.settle_attempts).';
GRANT EXECUTE ON FUNCTION app.apply_receipts(int) TO hermes_worker;

-- The receipt consumer's fallback when a batch of app.apply_receipts fails: the head
-- of the inbox, up to p_limit receipts, one at a time (each its own subtransaction),
-- so that one receipt that cannot be applied (a bug a row triggers) stops nothing
-- behind it -- every tenant's receipts share this inbox. A passing error (deadlock,
-- lock timeout, resources, shutdown) quarantines nothing: it is raised again. The failing receipt leaves the
-- inbox for private.receipt_quarantine with its SQLSTATE and error. Slow by design
-- (only run after a failure). Returns {applied, quarantined: [receipt ids]}.
CREATE OR REPLACE FUNCTION app.isolate_receipts(p_limit int DEFAULT 100)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_applied int := 0;
  v_quarantined bigint[] := '{}';
  v_head private.receipt_queue;
  v_state text;
  v_error text;
BEGIN
  IF NOT pg_try_advisory_xact_lock(hashtextextended('hermes.apply_receipts', 0)) THEN
    RETURN jsonb_build_object('applied', 0, 'busy', true);
  END IF;
  FOR i IN 1 .. greatest(p_limit, 0) LOOP
    SELECT * INTO v_head FROM private.receipt_queue ORDER BY receipt_id LIMIT 1;
    EXIT WHEN NOT FOUND;
    BEGIN
      v_applied := v_applied + (app.apply_receipts(1) ->> 'applied')::int;
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_error = MESSAGE_TEXT;
      -- A passing trouble (a deadlock, a lock wait past lock_timeout, resources, the
      -- server going away) says nothing about the receipt: it stays queued.
      IF left(v_state, 2) IN ('40', '53', '08', '57') OR v_state = '55P03' THEN
        RAISE;
      END IF;
      DELETE FROM private.receipt_queue WHERE receipt_id = v_head.receipt_id;
      INSERT INTO private.receipt_quarantine (tenant_id, receipt_id, message_created_at, sqlstate, error)
      SELECT r.tenant_id, r.id, r.message_created_at, v_state, left(v_error, 500)
        FROM app.receipts r
       WHERE r.id = v_head.receipt_id AND r.message_created_at = v_head.message_created_at
      ON CONFLICT (tenant_id, receipt_id) DO UPDATE SET sqlstate = excluded.sqlstate, error = excluded.error,
                                             quarantined_at = now();
      v_quarantined := v_quarantined || v_head.receipt_id;
    END;
  END LOOP;
  RETURN jsonb_build_object('applied', v_applied, 'quarantined', to_jsonb(v_quarantined));
END
$$;
COMMENT ON FUNCTION app.isolate_receipts(int) IS
  'After a failed app.apply_receipts: applies the inbox''s head one receipt at a time, quarantining one that fails.';
GRANT EXECUTE ON FUNCTION app.isolate_receipts(int) TO hermes_worker;
