-- Periodic upkeep, run by the workers' pgqueuer schedule "maintenance" (and, for
-- partitions, by migrate):
--   * monthly partitions ahead (private.ensure_partitions);
--   * idempotency keys older than 7 days pruned, and content-dedup rows (app.recent_contents);
--   * the sweep, Hermes's one retry policy for jobs that fail unexpectedly: an attempt
--     still pending or claimed, untouched for requeue_after (private.settings, 2
--     minutes; longer than the claim lease), with no queued or picked send job, lost its
--     job (a job held as failed when the database went away mid-batch, a queue row
--     removed by hand...). It gets a new one, so every accepted message keeps moving
--     towards its terminal state; a 'requeued' event says why;
--   * the same for imports (private.requeue_imports): one parsing or merging, idle for
--     requeue_after, with no live job, gets its PARSE or MERGE jobs again;
--   * the receipt timeout (after applying what waits in the receipt inbox): an attempt handed off longer ago than receipt_timeout
--     (private.settings, 72 hours) without a final receipt ends 'unknown', and so does
--     its message (error_code receipt_timeout): every accepted message reaches exactly
--     one terminal state even when the provider never reports back.
CREATE OR REPLACE FUNCTION app.run_maintenance()
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_created  text[];
  v_pruned   bigint;
  v_requeued int := 0;
  v_attempt  record;
  v_with_job uuid[];
  v_expired  int := 0;
  v_imports  int;
  v_timeout  interval := coalesce(
    (SELECT value::interval FROM private.settings WHERE key = 'receipt_timeout'), interval '72 hours');
  v_requeue_after interval := greatest(
    coalesce((SELECT value::interval FROM private.settings WHERE key = 'requeue_after'), interval '2 minutes'),
    private.claim_lease());
BEGIN
  SELECT coalesce(array_agg(p), '{}') INTO v_created FROM private.ensure_partitions(3) p;
  -- Receipts still waiting in the inbox count before any timeout below.
  PERFORM app.apply_receipts(10000);
  DELETE FROM app.idempotency_keys WHERE created_at < now() - interval '7 days';
  GET DIAGNOSTICS v_pruned = ROW_COUNT;
  -- The content-dedup store only needs the longest window (7 days at most).
  DELETE FROM app.recent_contents WHERE last_at < now() - interval '7 days';

  -- The attempts that have a send job: read off the queue once per sweep (each payload
  -- parsed once, into a hashed set), not by parsing every queued payload again for each
  -- open attempt. (An index on the parsed payload would make this a lookup, at the
  -- price of one more index insert on every enqueue of the hot path: not worth it for
  -- a sweep once a minute: a few milliseconds per 10,000 queued jobs.)
  v_with_job := ARRAY(
    SELECT DISTINCT (convert_from(j.payload, 'UTF8')::jsonb ->> 'attempt_id')::uuid
      FROM pgqueuer.pgqueuer j
     WHERE j.entrypoint IN ('send', 'send_sms') AND j.status IN ('queued', 'picked'));
  FOR v_attempt IN
    SELECT a.id, a.message_id, a.message_created_at, a.tenant_id, a.status
      FROM app.message_attempts a
     WHERE a.status IN ('pending', 'claimed')
       AND a.updated_at < now() - v_requeue_after
       AND NOT EXISTS (SELECT 1 FROM unnest(v_with_job) w(id) WHERE w.id = a.id)
     ORDER BY a.updated_at
     LIMIT 1000
     FOR UPDATE OF a SKIP LOCKED
  LOOP
    PERFORM private.enqueue_job('send', jsonb_build_object('attempt_id', v_attempt.id));
    UPDATE app.message_attempts SET updated_at = now()
     WHERE id = v_attempt.id AND message_created_at = v_attempt.message_created_at;
    PERFORM private.log_event(v_attempt.message_id, v_attempt.message_created_at, v_attempt.tenant_id,
                              v_attempt.id, 'requeued', NULL, NULL, NULL,
                              jsonb_build_object('reason', 'no_live_job', 'attempt_status', v_attempt.status));
    v_requeued := v_requeued + 1;
  END LOOP;

  v_imports := private.requeue_imports(v_requeue_after);

  FOR v_attempt IN
    SELECT a.id, a.message_id, a.message_created_at, a.tenant_id, a.provider, a.provider_status
      FROM app.message_attempts a
     WHERE a.status = 'handed_off' AND a.handed_off_at < now() - v_timeout
     ORDER BY a.handed_off_at
     LIMIT 1000
     FOR UPDATE OF a SKIP LOCKED
  LOOP
    UPDATE app.message_attempts
       SET status = 'unknown', error_code = 'receipt_timeout', completed_at = now(), updated_at = now(),
           error_message = format('No final receipt within %s of hand-off.', v_timeout)
     WHERE id = v_attempt.id AND message_created_at = v_attempt.message_created_at;
    PERFORM private.log_event(v_attempt.message_id, v_attempt.message_created_at, v_attempt.tenant_id,
                              v_attempt.id, 'receipt_timeout', NULL, v_attempt.provider_status,
                              'receipt_timeout', jsonb_build_object('timeout', v_timeout::text));
    -- The message ends unknown, or its cascade moves on.
    PERFORM private.settle_attempts(ARRAY[v_attempt.id]);
    v_expired := v_expired + 1;
  END LOOP;

  RETURN jsonb_build_object('partitions_created', to_jsonb(v_created), 'idempotency_keys_pruned', v_pruned,
                            'attempts_requeued', v_requeued, 'attempts_timed_out', v_expired,
                            'imports_requeued', v_imports);
END
$$;
COMMENT ON FUNCTION app.run_maintenance() IS
  'Creates partitions ahead, prunes old idempotency keys, re-enqueues attempts that lost their job, times out silent hand-offs.';
GRANT EXECUTE ON FUNCTION app.run_maintenance() TO hermes_worker;
