-- The cascade's timers: a worker's step_timeout jobs, in a batch. A step handed off
-- with a receipt timeout (app.message_attempts.step_timeout) got a job due when the
-- timeout ends (private.record_handoffs_locked). If by then the step is still only
-- handed off -- no final receipt --, it is still its message's current step, the
-- message is not finished and a later step waits, the step is 'timed_out' (a
-- 'step_timeout' event) and the cascade moves on (private.settle_attempts). A late
-- receipt still lands on the step afterwards: a delivery then ends the message, if
-- nothing else has. Anything else: nothing to do (delivered meanwhile, failed and
-- already moved on, a job that ran early).
-- Returns {expired, messages: settle_attempts' counts}.
CREATE OR REPLACE FUNCTION app.expire_steps(p_attempt_ids uuid[])
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_expired uuid[];
BEGIN
  PERFORM private.lock_attempts(p_attempt_ids);
  WITH due AS (
    SELECT a.id, a.message_created_at, a.message_id, a.tenant_id, a.attempt_no, a.step_timeout,
           a.provider_status, m.status AS message_status
      FROM app.message_attempts a
      JOIN app.messages m ON m.id = a.message_id AND m.created_at = a.message_created_at
     WHERE a.id = ANY(p_attempt_ids)
       AND a.message_created_at = ANY(ARRAY(SELECT DISTINCT private.uuid7_time(i) FROM unnest(p_attempt_ids) i))
       AND a.status = 'handed_off' AND a.step_timeout IS NOT NULL
       AND a.handed_off_at + a.step_timeout <= now() + interval '1 second'
       AND m.current_step = a.attempt_no AND private.message_status_rank(m.status) < 100
       AND EXISTS (SELECT 1 FROM app.message_attempts x
                    WHERE x.message_id = a.message_id AND x.message_created_at = a.message_created_at
                      AND x.attempt_no > a.attempt_no AND x.status = 'waiting')
  ), expired AS (
    UPDATE app.message_attempts a
       SET status = 'timed_out', error_code = 'step_timeout', updated_at = now(),
           error_message = format('No final receipt within %s of hand-off.', d.step_timeout)
      FROM due d
     WHERE a.id = d.id AND a.message_created_at = d.message_created_at
    RETURNING a.id
  ), events AS (
    INSERT INTO app.message_events (message_created_at, message_id, tenant_id, attempt_id, event_type, status,
                                    provider_status, error_code, details)
    SELECT d.message_created_at, d.message_id, d.tenant_id, d.id, 'step_timeout', d.message_status,
           d.provider_status, 'step_timeout',
           jsonb_build_object('step', d.attempt_no, 'timeout_seconds', extract(epoch FROM d.step_timeout)::int)
      FROM due d
  )
  SELECT coalesce(array_agg(e.id), '{}') INTO v_expired FROM expired e;
  RETURN jsonb_build_object('expired', cardinality(v_expired), 'messages', private.settle_attempts(v_expired));
END
$$;
COMMENT ON FUNCTION app.expire_steps(uuid[]) IS
  'The cascade''s timers: steps still without a final receipt at their timeout are timed_out and the cascade moves on.';
GRANT EXECUTE ON FUNCTION app.expire_steps(uuid[]) TO hermes_worker;
