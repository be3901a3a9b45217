-- What attempts that just ended mean for their messages: the cascade, in one place.
-- The caller holds the attempts' locks and has set their status (delivered,
-- undelivered, failed, rejected, unknown, or timed_out: no final receipt within the
-- step's timeout). Per message (locked here, in id order), one decision:
--   deliver  an attempt was delivered and the message is not finished: the message is
--            delivered -- by whichever step, even one that timed out before -- and the
--            steps not handed off yet are canceled, with their timers.
--   advance  the current step ended without delivery and a later step waits: it becomes
--            pending (its send job enqueued), the message's current step; a 'fallback'
--            event says why.
--   finish   the current step ended without delivery and no step is left: the message
--            ends with the step's status (timed_out cannot be last: the last step has no
--            timeout) and its error.
--   correct  the message is finished by this step, which got a higher-ranked final
--            status since (SES: a Bounce after a Delivery): the message's status follows,
--            the cascade does not reopen ('corrected' event).
--   late     the message is finished and this is another step's end, or nothing new:
--            recorded as a 'late_receipt' event, nothing changes.
--   (an earlier step's non-delivery, while a later one is current: nothing to do)
-- An erased message (private.erase_addresses) stays erased: its steps are redacted
-- before anything here can copy them, and its body is never overwritten.
-- Returns {delivered, advanced, finished, corrected, late}.
CREATE OR REPLACE FUNCTION private.settle_attempts(p_attempt_ids uuid[])
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_decided jsonb;
BEGIN
  IF coalesce(cardinality(p_attempt_ids), 0) = 0 THEN
    RETURN jsonb_build_object('delivered', 0, 'advanced', 0, 'finished', 0, 'corrected', 0, 'late', 0);
  END IF;
  PERFORM 1 FROM app.messages m
   WHERE (m.id, m.created_at) IN (
           SELECT a.message_id, a.message_created_at FROM app.message_attempts a
            WHERE a.id = ANY(p_attempt_ids)
              AND a.message_created_at = ANY(ARRAY(SELECT DISTINCT private.uuid7_time(i) FROM unnest(p_attempt_ids) i)))
   ORDER BY m.id
     FOR UPDATE OF m;

  -- One statement: every part below changes rows no other part changes, and reads the
  -- state before the statement.
  WITH d AS MATERIALIZED (
    SELECT DISTINCT ON (e.message_id)
           e.message_id, e.message_created_at, e.tenant_id, e.id AS attempt_id, e.attempt_no, e.status,
           e.error_code, e.error_message, e.reasons, e.channel, e.to_address, e.from_address,
           e.content ->> 'body' AS body, e.content ? 'redacted' AS erased, e.provider, e.provider_message_id, m.status AS message_status,
           CASE WHEN private.message_status_rank(m.status) < 100 AND e.status = 'delivered' THEN 'deliver'
                WHEN private.message_status_rank(m.status) = 100 AND e.attempt_no = m.current_step
                     AND e.status IN ('delivered', 'undelivered', 'failed') AND e.status <> m.status
                     AND m.status IN ('delivered', 'undelivered', 'failed') THEN 'correct'
                WHEN private.message_status_rank(m.status) = 100 THEN 'late'
                WHEN e.attempt_no <> m.current_step THEN 'none'
                WHEN nxt.id IS NOT NULL THEN 'advance'
                ELSE 'finish' END AS decision,
           nxt.id AS next_id, nxt.attempt_no AS next_no, nxt.channel AS next_channel,
           nxt.to_address AS next_to, nxt.from_address AS next_from, nxt.content ->> 'body' AS next_body
      FROM app.message_attempts e
      JOIN app.messages m ON m.id = e.message_id AND m.created_at = e.message_created_at
      LEFT JOIN LATERAL (
        SELECT x.* FROM app.message_attempts x
         WHERE x.message_id = e.message_id AND x.message_created_at = e.message_created_at
           AND x.attempt_no > e.attempt_no AND x.status = 'waiting'
         ORDER BY x.attempt_no LIMIT 1) nxt ON true
     WHERE e.id = ANY(p_attempt_ids)
       AND e.message_created_at = ANY(ARRAY(SELECT DISTINCT private.uuid7_time(i) FROM unnest(p_attempt_ids) i))
       AND e.status IN ('delivered', 'undelivered', 'failed', 'rejected', 'unknown', 'timed_out')
     ORDER BY e.message_id, (e.status = 'delivered') DESC, (e.attempt_no = m.current_step) DESC, e.attempt_no DESC
  ), ended AS (
    -- deliver / finish / correct: the message's status, and the step that decided it.
    UPDATE app.messages m
       SET status = CASE WHEN d.status = 'timed_out' THEN 'unknown' ELSE d.status END,
           current_step = d.attempt_no, channel = d.channel,
           to_address = CASE WHEN m.to_address = '[erased]' AND d.erased THEN m.to_address ELSE d.to_address END,
           from_address = d.from_address,
           body = CASE WHEN m.body = '[erased]' THEN m.body ELSE coalesce(d.body, m.body) END,
           provider = coalesce(d.provider, m.provider),
           provider_message_id = CASE WHEN d.attempt_no <> m.current_step OR m.provider_message_id IS NULL
                                      THEN d.provider_message_id ELSE m.provider_message_id END,
           error_code = CASE WHEN d.status = 'delivered' THEN NULL ELSE coalesce(d.error_code, m.error_code) END,
           error_message = CASE WHEN d.status = 'delivered' THEN NULL
                                WHEN d.status = 'rejected' THEN coalesce(d.error_message,
                                  'Not sent: the recipient was no longer eligible at hand-off (see reasons).')
                                ELSE coalesce(d.error_message, m.error_message) END,
           reasons = CASE WHEN d.status = 'rejected' THEN d.reasons ELSE m.reasons END,
           sent_at = CASE WHEN d.status IN ('delivered', 'undelivered') THEN coalesce(m.sent_at, now()) ELSE m.sent_at END,
           completed_at = coalesce(m.completed_at, now()),
           updated_at = now()
      FROM d
     WHERE d.decision IN ('deliver', 'finish', 'correct')
       AND m.id = d.message_id AND m.created_at = d.message_created_at
    RETURNING m.id
  ), canceled AS (
    -- deliver: the steps not handed off yet are canceled.
    UPDATE app.message_attempts a
       SET status = 'canceled', completed_at = now(), updated_at = now()
      FROM d
     WHERE d.decision = 'deliver' AND a.message_id = d.message_id AND a.message_created_at = d.message_created_at
       AND a.status IN ('waiting', 'pending')
    RETURNING a.id, a.message_id, a.message_created_at, a.tenant_id, a.attempt_no, d.attempt_no AS by_step
  ), timers AS (
    -- deliver / finish: no timer of the message has anything left to do.
    DELETE FROM pgqueuer.pgqueuer q
     USING app.message_attempts a, d
     WHERE d.decision IN ('deliver', 'finish') AND a.message_id = d.message_id
       AND a.message_created_at = d.message_created_at AND a.timer_job_id IS NOT NULL
       AND q.id = a.timer_job_id AND q.status = 'queued'
    RETURNING q.id, q.entrypoint, q.priority
  ), timers_logged AS (
    INSERT INTO pgqueuer.pgqueuer_log (job_id, status, entrypoint, priority)
    SELECT t.id, 'deleted', t.entrypoint, t.priority FROM timers t
  ), started AS (
    -- advance: the next step is pending and the message's current step; its job is due now.
    UPDATE app.message_attempts a
       SET status = 'pending', updated_at = now()
      FROM d
     WHERE d.decision = 'advance' AND a.id = d.next_id AND a.message_created_at = d.message_created_at
    RETURNING a.id
  ), moved AS (
    UPDATE app.messages m
       SET current_step = d.next_no, channel = d.next_channel, to_address = d.next_to,
           from_address = d.next_from,
           body = CASE WHEN m.body = '[erased]' THEN m.body ELSE coalesce(d.next_body, m.body) END,
           updated_at = now()
      FROM d
     WHERE d.decision = 'advance' AND m.id = d.message_id AND m.created_at = d.message_created_at
    RETURNING m.id
  ), jobs AS (
    SELECT private.enqueue_jobs('send', array_agg(jsonb_build_object('attempt_id', d.next_id) ORDER BY d.next_id))
      FROM d WHERE d.decision = 'advance'
    HAVING count(*) > 0
  ), events AS (
    INSERT INTO app.message_events (message_created_at, message_id, tenant_id, attempt_id, event_type, status,
                                    error_code, details)
    SELECT d.message_created_at, d.message_id, d.tenant_id,
           CASE WHEN d.decision = 'advance' THEN d.next_id ELSE d.attempt_id END,
           CASE d.decision WHEN 'advance' THEN 'fallback' WHEN 'correct' THEN 'corrected' ELSE 'late_receipt' END,
           CASE d.decision WHEN 'correct' THEN d.status ELSE d.message_status END,
           d.error_code,
           jsonb_strip_nulls(CASE d.decision
             WHEN 'advance' THEN jsonb_build_object('from_step', d.attempt_no, 'to_step', d.next_no,
                                                    'channel', d.next_channel, 'because', d.status,
                                                    'reasons', d.reasons)
             WHEN 'correct' THEN jsonb_build_object('step', d.attempt_no, 'from', d.message_status, 'to', d.status)
             ELSE jsonb_build_object('step', d.attempt_no, 'attempt_status', d.status,
                                     'message_status', d.message_status) END)
      FROM d WHERE d.decision IN ('advance', 'correct', 'late')
    UNION ALL
    SELECT c.message_created_at, c.message_id, c.tenant_id, c.id, 'canceled', 'delivered',
           NULL, jsonb_build_object('step', c.attempt_no, 'delivered_by_step', c.by_step)
      FROM canceled c
  )
  SELECT jsonb_build_object(
           'delivered', count(*) FILTER (WHERE d.decision = 'deliver'),
           'advanced', count(*) FILTER (WHERE d.decision = 'advance'),
           'finished', count(*) FILTER (WHERE d.decision = 'finish'),
           'corrected', count(*) FILTER (WHERE d.decision = 'correct'),
           'late', count(*) FILTER (WHERE d.decision = 'late'),
           'jobs', (SELECT count(*) FROM jobs), 'timers_deleted', (SELECT count(*) FROM timers),
           'canceled', (SELECT count(*) FROM canceled),
           'changed', (SELECT count(*) FROM ended) + (SELECT count(*) FROM moved) + (SELECT count(*) FROM started))
    INTO v_decided FROM d;
  RETURN v_decided;
END
$$;
COMMENT ON FUNCTION private.settle_attempts(uuid[]) IS
  'The cascade: what ended attempts mean for their messages (deliver, advance to the next step, finish, correct, late).';
