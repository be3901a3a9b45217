-- Records hand-offs -- the provider has these attempts, under these provider ids --
-- for attempts that have none yet; the caller holds their row locks. Sets the
-- attempt's provider id (pending/claimed become handed_off), moves the message to
-- 'sent' (never backwards) and appends a 'handed_off' event; a cascade step with a
-- timeout gets its timer. Shared by the worker's
-- app.record_handoffs and by app.apply_receipts (a receipt for a hand-off the worker
-- never recorded). p_handoffs = [{"attempt_id", "provider_message_id"}, ...]; the
-- first entry per attempt counts. An attempt erased while it was being called gets its
-- provider_delete job. Returns how many hand-offs were recorded.
CREATE OR REPLACE FUNCTION private.record_handoffs_locked(p_handoffs jsonb, p_via text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE  -- not sql: PostgreSQL < 18 plans a SQL function's body on every call
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_n bigint;
  v_timed uuid[];
  v_deleted bigint;
BEGIN
  WITH given AS (
    SELECT DISTINCT ON (h.attempt_id) h.attempt_id, private.uuid7_time(h.attempt_id) AS created,
           h.provider_message_id
      FROM (SELECT (e ->> 'attempt_id')::uuid AS attempt_id, e ->> 'provider_message_id' AS provider_message_id, n
              FROM jsonb_array_elements(p_handoffs) WITH ORDINALITY AS x(e, n)) h
     ORDER BY h.attempt_id, h.n
  ), attempts AS (
    UPDATE app.message_attempts a
       SET provider_message_id = g.provider_message_id,
           handed_off_at = now(),
           status = CASE WHEN a.status IN ('pending', 'claimed') THEN 'handed_off' ELSE a.status END,
           updated_at = now()
      FROM given g
     WHERE a.id = g.attempt_id AND a.message_created_at = g.created AND a.provider_message_id IS NULL
    RETURNING a.id, a.message_id, a.message_created_at, a.tenant_id, a.provider, a.provider_message_id,
              a.attempt_no, a.step_timeout, a.provider_account_id, a.content ? 'redacted' AS erased
  ), deletions AS (
    -- Erased while its provider call was under way (private.erase_addresses): the
    -- provider's copy is deleted too, as the erasure does for the steps it found handed off.
    SELECT private.enqueue_job('provider_delete', jsonb_build_object(
             'provider', a.provider, 'provider_account_id', a.provider_account_id,
             'environment', t.environment, 'provider_message_id', a.provider_message_id))
      FROM attempts a JOIN app.tenants t ON t.id = a.tenant_id
     WHERE a.erased AND a.provider = 'twilio'
  ), messages AS (
    UPDATE app.messages m
       SET status = CASE WHEN private.message_status_rank(m.status) < private.message_status_rank('sent')
                         THEN 'sent' ELSE m.status END,
           provider = coalesce(m.provider, a.provider),
           provider_message_id = coalesce(m.provider_message_id, a.provider_message_id),
           sent_at = CASE WHEN private.message_status_rank(m.status) < private.message_status_rank('sent')
                          THEN coalesce(m.sent_at, now()) ELSE m.sent_at END,
           updated_at = CASE WHEN private.message_status_rank(m.status) < private.message_status_rank('sent')
                             THEN now() ELSE m.updated_at END
      FROM attempts a
     WHERE m.id = a.message_id AND m.created_at = a.message_created_at
       AND m.current_step = a.attempt_no
    RETURNING m.id, m.created_at, m.status
  ), events AS (
    INSERT INTO app.message_events (message_created_at, message_id, tenant_id, attempt_id, event_type,
                                    status, details)
    SELECT a.message_created_at, a.message_id, a.tenant_id, a.id, 'handed_off', m.status,
           jsonb_build_object('provider_message_id', a.provider_message_id, 'via', p_via)
      FROM attempts a LEFT JOIN messages m ON m.id = a.message_id AND m.created_at = a.message_created_at
  )
  SELECT count(*), array_agg(a.id) FILTER (WHERE a.step_timeout IS NOT NULL), (SELECT count(*) FROM deletions)
    INTO v_n, v_timed, v_deleted FROM attempts a;

  -- A step with a timeout and a later step waiting gets its timer: a step_timeout job
  -- due when the timeout ends (app.expire_steps), its id kept on the attempt so that
  -- the message's end can delete it.
  IF v_timed IS NOT NULL THEN
    WITH due AS (
      SELECT a.id, a.message_created_at, now() + a.step_timeout AS at
        FROM app.message_attempts a
       WHERE a.id = ANY(v_timed)
         AND a.message_created_at = ANY(ARRAY(SELECT DISTINCT private.uuid7_time(i) FROM unnest(v_timed) i))
         AND a.timer_job_id IS NULL
         AND EXISTS (SELECT 1 FROM app.message_attempts x
                      WHERE x.message_id = a.message_id AND x.message_created_at = a.message_created_at
                        AND x.attempt_no > a.attempt_no AND x.status = 'waiting')
    ), jobs AS (
      INSERT INTO pgqueuer.pgqueuer (priority, entrypoint, payload, execute_after, status)
      SELECT 0, 'step_timeout', convert_to(jsonb_build_object('attempt_id', d.id)::text, 'UTF8'), d.at, 'queued'
        FROM due d
      RETURNING id, entrypoint, priority, (convert_from(payload, 'UTF8')::jsonb ->> 'attempt_id')::uuid AS attempt_id
    ), logged AS (
      INSERT INTO pgqueuer.pgqueuer_log (job_id, status, entrypoint, priority)
      SELECT j.id, 'queued', j.entrypoint, j.priority FROM jobs j
    )
    UPDATE app.message_attempts a SET timer_job_id = j.id
      FROM jobs j
     WHERE a.id = j.attempt_id AND a.message_created_at = private.uuid7_time(j.attempt_id);
  END IF;
  RETURN v_n;
END
$$;
COMMENT ON FUNCTION private.record_handoffs_locked(jsonb, text) IS
  'Records provider ids of attempts that have none (caller holds the locks): attempt handed_off, message sent, event.';
