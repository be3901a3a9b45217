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
--   * per attempt, one status applies: the first terminal receipt (by arrival), else
--     the highest-ranked one, and only if it outranks what the attempt has and the
--     attempt is not terminal yet. So statuses only move forward, the first terminal
--     state wins, and late or duplicate receipts change nothing, in whatever order
--     and batches they arrive.
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
     ORDER BY c.attempt_id, (c.rank >= 100) DESC,
              CASE WHEN c.rank >= 100 THEN c.id END, c.rank DESC, c.id
  ), attempts AS (
    UPDATE app.message_attempts a
       SET provider_status = c.provider_status,
           provider_status_rank = c.rank,
           status = CASE WHEN c.rank >= 100 THEN c.message_status
                         WHEN a.status IN ('pending', 'claimed') THEN 'handed_off'
                         ELSE a.status END,
           error_code = coalesce(c.error_code, a.error_code),
           error_message = coalesce(c.error_message, a.error_message),
           updated_at = now()
      FROM chosen c
     WHERE a.id = c.attempt_id AND a.message_created_at = c.message_created_at
       AND c.rank > a.provider_status_rank
       AND a.status NOT IN ('delivered', 'undelivered', 'failed', 'rejected', 'unknown')
    RETURNING a.message_id, a.message_created_at, a.provider, a.provider_message_id,
              c.message_status, c.error_code, c.error_message
  ), messages AS (
    UPDATE app.messages m
       SET status = a.message_status,
           provider = coalesce(a.provider, m.provider),
           provider_message_id = coalesce(m.provider_message_id, a.provider_message_id),
           error_code = coalesce(a.error_code, m.error_code),
           error_message = coalesce(a.error_message, m.error_message),
           updated_at = now(),
           sent_at = CASE WHEN a.message_status IN ('sent', 'delivered', 'undelivered')
                          THEN coalesce(m.sent_at, now()) ELSE m.sent_at END,
           completed_at = CASE WHEN private.message_status_rank(a.message_status) = 100 THEN now() END
      FROM attempts a
     WHERE m.id = a.message_id AND m.created_at = a.message_created_at
       AND private.message_status_rank(a.message_status) > private.message_status_rank(m.status)
    RETURNING m.id
  )
  SELECT (SELECT count(*) FROM attempts) INTO v_changed;

  RETURN jsonb_build_object('applied', cardinality(v_batch), 'attempts_changed', v_changed,
                            'handoffs_recorded', v_handoffs);
END
$$;
COMMENT ON FUNCTION app.apply_receipts(int) IS
  'Applies pending inbox receipts set-based: events, unrecorded hand-offs, monotonic statuses, first terminal wins.';
GRANT EXECUTE ON FUNCTION app.apply_receipts(int) TO hermes_worker;
