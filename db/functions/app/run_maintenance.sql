-- Periodic upkeep, run by the workers' pgqueuer schedule "maintenance" (and, for
-- partitions, by migrate):
--   * monthly partitions ahead (private.ensure_partitions);
--   * idempotency keys older than 7 days pruned, and content-dedup rows (app.recent_contents);
--   * the sweep, Hermes's one retry policy for jobs that fail unexpectedly: an attempt
--     still pending or claimed, untouched for requeue_after (private.settings, 2
--     minutes; longer than the claim lease), with no queued or picked send job, lost its
--     job (a job held as failed when the database went away mid-batch, a queue row
--     removed by hand...). It gets a new one, so every accepted message keeps moving
--     towards its terminal state; a 'requeued' event says why. Each replaced job is
--     counted (job_failures): at max_job_failures (private.settings, 5) the attempt
--     ends instead ('gave_up' event, error job_failed: failed, or unknown when a
--     provider call may be outstanding) and its cascade moves on -- a poison attempt
--     is never requeued forever. Deferrals are new jobs, not failures: not counted;
--   * lost step timers: a step past its timeout with a later step waiting and no live
--     timer job gets one again ('timer_rearmed'), at most max_job_failures times;
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
  v_requeue_ids uuid[];
  v_given_up uuid[];
  v_rearm    uuid[];
  v_max_failures int := coalesce(
    (SELECT value::int FROM private.settings WHERE key = 'max_job_failures'), 5);
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
  -- Set-based, locked in id order (the claim's order), skipping what a worker holds.
  WITH lost AS MATERIALIZED (
    SELECT a.id, a.message_id, a.message_created_at, a.tenant_id, a.status, a.job_failures,
           a.calling_claim_no
      FROM app.message_attempts a
     WHERE a.id IN (
             SELECT o.id FROM app.message_attempts o
              WHERE o.status IN ('pending', 'claimed')
                AND o.updated_at < now() - v_requeue_after
                AND NOT (o.id = ANY (v_with_job))
              ORDER BY o.updated_at
              LIMIT 1000)
       AND a.status IN ('pending', 'claimed')
     ORDER BY a.id
       FOR UPDATE OF a SKIP LOCKED
  ), changed AS (
    -- Another job for it, or (its jobs failed max_job_failures times) its end: failed,
    -- or unknown when a provider call may be outstanding (the calling mark).
    UPDATE app.message_attempts a
       SET job_failures = a.job_failures + 1, updated_at = now(),
           status = CASE WHEN l.job_failures + 1 < v_max_failures THEN a.status
                         WHEN a.calling_claim_no IS NOT NULL THEN 'unknown' ELSE 'failed' END,
           error_code = CASE WHEN l.job_failures + 1 < v_max_failures THEN a.error_code ELSE 'job_failed' END,
           error_message = CASE WHEN l.job_failures + 1 < v_max_failures THEN a.error_message
                                WHEN a.calling_claim_no IS NOT NULL
                                THEN format('Its send job failed %s times; a provider call may have been made.', v_max_failures)
                                ELSE format('Its send job failed %s times; not sent.', v_max_failures) END,
           completed_at = CASE WHEN l.job_failures + 1 < v_max_failures THEN a.completed_at ELSE now() END,
           calling_claim_no = CASE WHEN l.job_failures + 1 < v_max_failures THEN a.calling_claim_no END
      FROM lost l
     WHERE a.id = l.id AND a.message_created_at = l.message_created_at
    RETURNING a.id, a.message_id, a.message_created_at, a.tenant_id, a.status, a.job_failures,
              l.status AS was, a.job_failures >= v_max_failures AS gave_up
  ), events AS (
    INSERT INTO app.message_events (message_created_at, message_id, tenant_id, attempt_id, event_type,
                                    error_code, details)
    SELECT c.message_created_at, c.message_id, c.tenant_id, c.id,
           CASE WHEN c.gave_up THEN 'gave_up' ELSE 'requeued' END,
           CASE WHEN c.gave_up THEN 'job_failed' END,
           jsonb_build_object('reason', CASE WHEN c.gave_up THEN 'job_failed' ELSE 'no_live_job' END,
                              'attempt_status', c.was, 'job_failures', c.job_failures)
      FROM changed c
  )
  SELECT count(*) FILTER (WHERE NOT c.gave_up),
         coalesce(array_agg(c.id) FILTER (WHERE NOT c.gave_up), '{}'),
         coalesce(array_agg(c.id) FILTER (WHERE c.gave_up), '{}')
    INTO v_requeued, v_requeue_ids, v_given_up
    FROM changed c;
  PERFORM private.enqueue_jobs('send', array_agg(jsonb_build_object('attempt_id', i)), array_agg(NULL::timestamptz))
     FROM unnest(v_requeue_ids) i
   HAVING count(*) > 0;
  -- The ended ones: the message fails, or its cascade moves on.
  PERFORM private.settle_attempts(v_given_up);

  -- Step timers whose job was lost (failed, removed): a handed-off step still current,
  -- with a later step waiting, past its timeout by requeue_after and with no live
  -- timer job, gets its timer again (app.expire_steps decides, as for the first).
  v_with_job := ARRAY(
    SELECT DISTINCT (convert_from(j.payload, 'UTF8')::jsonb ->> 'attempt_id')::uuid
      FROM pgqueuer.pgqueuer j
     WHERE j.entrypoint = 'step_timeout' AND j.status IN ('queued', 'picked'));
  WITH overdue AS MATERIALIZED (
    SELECT a.id, a.message_id, a.message_created_at, a.tenant_id, a.job_failures
      FROM app.message_attempts a
      JOIN app.messages m ON m.id = a.message_id AND m.created_at = a.message_created_at
     WHERE a.status = 'handed_off' AND a.step_timeout IS NOT NULL
       AND a.handed_off_at < now() - v_requeue_after - a.step_timeout
       AND a.job_failures < v_max_failures
       AND NOT (a.id = ANY (v_with_job))
       AND m.current_step = a.attempt_no AND private.message_status_rank(m.status) < 100
       AND EXISTS (SELECT 1 FROM app.message_attempts x
                    WHERE x.message_id = a.message_id AND x.message_created_at = a.message_created_at
                      AND x.attempt_no > a.attempt_no AND x.status = 'waiting')
     ORDER BY a.id
     LIMIT 1000
       FOR UPDATE OF a SKIP LOCKED
  ), rearmed AS (
    UPDATE app.message_attempts a SET job_failures = a.job_failures + 1
      FROM overdue o
     WHERE a.id = o.id AND a.message_created_at = o.message_created_at
    RETURNING a.id, a.job_failures
  ), events AS (
    INSERT INTO app.message_events (message_created_at, message_id, tenant_id, attempt_id, event_type, details)
    SELECT o.message_created_at, o.message_id, o.tenant_id, o.id, 'timer_rearmed',
           jsonb_build_object('reason', 'no_live_job', 'job_failures', r.job_failures)
      FROM overdue o JOIN rearmed r ON r.id = o.id
  )
  SELECT coalesce(array_agg(r.id), '{}') INTO v_rearm FROM rearmed r;
  PERFORM private.enqueue_jobs('step_timeout', array_agg(jsonb_build_object('attempt_id', i)),
                               array_agg(NULL::timestamptz))
     FROM unnest(v_rearm) i
   HAVING count(*) > 0;

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
                            'attempts_requeued', v_requeued, 'attempts_given_up', cardinality(v_given_up),
                            'timers_rearmed', cardinality(v_rearm), 'attempts_timed_out', v_expired,
                            'imports_requeued', v_imports);
END
$$;
COMMENT ON FUNCTION app.run_maintenance() IS
  'Creates partitions ahead, prunes old idempotency keys, re-enqueues attempts that lost their job, times out silent hand-offs.';
GRANT EXECUTE ON FUNCTION app.run_maintenance() TO hermes_worker;
