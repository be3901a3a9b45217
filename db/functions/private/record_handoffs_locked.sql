-- Records hand-offs -- the provider has these attempts, under these provider ids --
-- for attempts that have none yet; the caller holds their row locks. Sets the
-- attempt's provider id (pending/claimed become handed_off), moves the message to
-- 'sent' (never backwards) and appends a 'handed_off' event. Shared by the worker's
-- app.record_handoffs and by app.apply_receipts (a receipt for a hand-off the worker
-- never recorded). p_handoffs = [{"attempt_id", "provider_message_id"}, ...]; the
-- first entry per attempt counts. Returns how many hand-offs were recorded.
CREATE OR REPLACE FUNCTION private.record_handoffs_locked(p_handoffs jsonb, p_via text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE  -- not sql: PostgreSQL < 18 plans a SQL function's body on every call
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_n bigint;
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
    RETURNING a.id, a.message_id, a.message_created_at, a.tenant_id, a.provider, a.provider_message_id
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
    RETURNING m.id, m.created_at, m.status
  ), events AS (
    INSERT INTO app.message_events (message_created_at, message_id, tenant_id, attempt_id, event_type,
                                    status, details)
    SELECT a.message_created_at, a.message_id, a.tenant_id, a.id, 'handed_off', m.status,
           jsonb_build_object('provider_message_id', a.provider_message_id, 'via', p_via)
      FROM attempts a JOIN messages m ON m.id = a.message_id AND m.created_at = a.message_created_at
  )
  SELECT count(*) INTO v_n FROM attempts;
  RETURN v_n;
END
$$;
COMMENT ON FUNCTION private.record_handoffs_locked(jsonb, text) IS
  'Records provider ids of attempts that have none (caller holds the locks): attempt handed_off, message sent, event.';
