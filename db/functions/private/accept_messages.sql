-- Intake of messages, set-based: the one implementation behind app.submit_message
-- (one item) and app.submit_messages (a batch of up to 1,000). In the caller's
-- transaction: per-item validation (private.validate_message), per-item idempotency
-- keys, then every valid new message with its first attempt, its 'accepted' event and
-- its send job (outbox), in a few statements whatever the batch size.
-- p_items = [{"request": {...}, "key": text|null}, ...]. Returns one result per item,
-- in order: {index, status, message?, replayed?, problem?}:
--   201 accepted; 200 replayed (same key, same request: the first response);
--   409 idempotency_key_reused (same key, other request); 4xx the item's problem.
-- Within one batch, a key used twice counts once: the later item replays the earlier
-- (or is 409 when its request differs). p_internal: Hermes's own messages (keyword
-- replies, category compliance), which no caller may send.
CREATE OR REPLACE FUNCTION private.accept_messages(
  p_tenant_id uuid, p_default_from text, p_api_key_id uuid, p_items jsonb, p_internal boolean DEFAULT false)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_items private.intake_item[];
  v_now   timestamptz := clock_timestamp();
  v_count int;
  v_default_category text;
  v_dedup_window interval;
  v_rules jsonb;
BEGIN
  -- 1. Shape, key and validation of every item.
  SELECT coalesce(array_agg(ROW(
           e.n - 1, k.key, sha256(convert_to(coalesce(e.item -> 'request', 'null'::jsonb)::text, 'UTF8')),
           v.to_address, v.from_address, v.body,
           CASE WHEN k.bad THEN 422 ELSE v.problem_status END,
           CASE WHEN k.bad THEN 'invalid_idempotency_key' ELSE v.problem_code END,
           CASE WHEN k.bad THEN 'Idempotency-Key must be 1 to 255 characters.' ELSE v.problem_detail END,
           CASE WHEN k.bad THEN NULL ELSE v.problem_hint END,
           NULL, NULL, NULL, NULL, NULL, v.channel, v.vertical, v.category, NULL)::private.intake_item ORDER BY e.n), '{}')
    INTO v_items
    FROM jsonb_array_elements(p_items) WITH ORDINALITY e(item, n)
    CROSS JOIN LATERAL (
      SELECT CASE WHEN jsonb_typeof(e.item -> 'key') = 'string' THEN e.item ->> 'key' END AS key,
             (jsonb_typeof(e.item -> 'key') NOT IN ('string', 'null')
              OR length(e.item ->> 'key') NOT BETWEEN 1 AND 255) AS bad) k0
    CROSS JOIN LATERAL (SELECT CASE WHEN k0.bad THEN NULL ELSE k0.key END AS key,
                               coalesce(k0.bad, false) AS bad) k
    CROSS JOIN LATERAL private.validate_message(e.item -> 'request', p_default_from, p_internal) v;

  -- 2. Keys used before (committed): replay the first response, or refuse another request.
  --    Idempotency first: a replay is not re-validated against changed state.
  v_items := ARRAY(
    SELECT ROW(i.idx, i.key, i.hash, i.to_address, i.from_address, i.body,
               i.problem_status, i.problem_code, i.problem_detail, i.problem_hint,
               CASE WHEN p.key IS NOT NULL AND p.request_hash = i.hash THEN 'replay'
                    WHEN p.key IS NOT NULL THEN 'conflict'
                    WHEN i.key IS NOT NULL AND i.first_use <> i.idx THEN 'duplicate'
                    WHEN i.problem_code IS NOT NULL THEN 'problem'
                    ELSE 'accept' END,
               NULL, NULL, NULL, p.response, i.channel, i.vertical, i.category, i.reasons)::private.intake_item
      FROM (SELECT u.*, min(u.idx) OVER (PARTITION BY u.key) AS first_use FROM unnest(v_items) u) i
      LEFT JOIN app.idempotency_keys p ON p.tenant_id = p_tenant_id AND p.key = i.key
     ORDER BY i.idx);

  -- 3. Claim the new keys. A key another transaction took meanwhile (the insert waited
  --    for it) is resolved like a replay.
  WITH wanted AS (
    SELECT i.key, i.hash FROM unnest(v_items) i WHERE i.outcome = 'accept' AND i.key IS NOT NULL
  ), taken AS (
    INSERT INTO app.idempotency_keys (tenant_id, key, request_hash)
    SELECT p_tenant_id, w.key, w.hash FROM wanted w
     ORDER BY w.key   -- one order for every batch: two batches sharing keys cannot deadlock
    ON CONFLICT (tenant_id, key) DO NOTHING
    RETURNING key
  )
  SELECT count(*) INTO v_count FROM wanted w WHERE w.key NOT IN (SELECT key FROM taken);
  IF v_count > 0 THEN
    v_items := ARRAY(
      SELECT ROW(i.idx, i.key, i.hash, i.to_address, i.from_address, i.body,
                 i.problem_status, i.problem_code, i.problem_detail, i.problem_hint,
                 CASE WHEN i.outcome = 'accept' AND p.response IS NOT NULL AND p.request_hash = i.hash THEN 'replay'
                      WHEN i.outcome = 'accept' AND p.response IS NOT NULL THEN 'conflict'
                      ELSE i.outcome END,
                 NULL, NULL, NULL, coalesce(i.response, p.response), i.channel, i.vertical, i.category, i.reasons)::private.intake_item
        FROM unnest(v_items) i
        LEFT JOIN app.idempotency_keys p ON p.tenant_id = p_tenant_id AND p.key = i.key
       ORDER BY i.idx);
  END IF;

  -- 4. Eligibility of the new messages (private.send_eligibility, one query for the
  --    batch), with the tenant's default category where a message names none:
  --    ineligible -> 'reject': stored as 'rejected' with its reasons and answered 201
  --    like any other (readable later, replayed under its key), no attempt, no job;
  --    only outside quiet hours -> 'schedule': stored as 'scheduled', its job due at
  --    the next allowed time. (The claim checks again under the address lock.)
  SELECT coalesce(p.default_category, 'marketing'), coalesce(p.content_dedup_window, interval '10 minutes'),
         private.rules_in_force(p.version)
    INTO v_default_category, v_dedup_window, v_rules
    FROM (SELECT 1) one LEFT JOIN app.tenant_policies p ON p.tenant_id = p_tenant_id;
  IF EXISTS (SELECT 1 FROM unnest(v_items) i WHERE i.outcome = 'accept') THEN
    v_items := ARRAY(
      SELECT ROW(i.idx, i.key, i.hash, i.to_address, i.from_address, i.body,
                 i.problem_status, i.problem_code, i.problem_detail, i.problem_hint,
                 CASE WHEN e.eligible = false AND e.next_allowed_at IS NOT NULL THEN 'schedule'
                      WHEN e.eligible = false THEN 'reject' ELSE i.outcome END,
                 i.message_id, i.created_at, i.attempt_id, i.response,
                 i.channel, i.vertical, coalesce(i.category, v_default_category),
                 CASE WHEN e.eligible = false THEN e.reasons END)::private.intake_item
        FROM unnest(v_items) i
        LEFT JOIN private.send_eligibility(
               ARRAY(SELECT ROW(a.idx, p_tenant_id, a.channel, a.to_address, a.from_address, a.vertical,
                                coalesce(a.category, v_default_category), NULL)::private.send_candidate
                       FROM unnest(v_items) a WHERE a.outcome = 'accept'), v_now) e ON e.idx = i.idx
       ORDER BY i.idx);
  END IF;

  -- 5. Ids for the new messages: UUIDv7 stamped with one instant, attempts (of those
  --    that will be sent) with the message's.
  v_items := ARRAY(
    SELECT ROW(i.idx, i.key, i.hash, i.to_address, i.from_address, i.body,
               i.problem_status, i.problem_code, i.problem_detail, i.problem_hint, i.outcome,
               ids.message_id, private.uuid7_time(ids.message_id),
               CASE WHEN i.outcome IN ('accept', 'schedule') THEN private.uuid7(private.uuid7_time(ids.message_id)) END,
               i.response, i.channel, i.vertical, i.category, i.reasons)::private.intake_item
      FROM unnest(v_items) i
      CROSS JOIN LATERAL (SELECT CASE WHEN i.outcome IN ('accept', 'reject', 'schedule') THEN private.uuid7(v_now) END
                                 AS message_id) ids
     ORDER BY i.idx);

  -- 6. Content dedup: the same body to the same recipient within the tenant's window
  --    (content_dedup_window, 10 minutes) is refused (duplicate_content). One upsert per
  --    batch into app.recent_contents: a row younger than the window is not replaced,
  --    and a concurrent intake of the same body waits on the row and then sees it. Of
  --    the same body twice in one batch, the first goes.
  IF v_dedup_window > interval '0' AND EXISTS (SELECT 1 FROM unnest(v_items) i WHERE i.outcome IN ('accept', 'schedule')) THEN
    WITH wanted AS (
      SELECT DISTINCT ON (w.address_hash, w.content_hash) w.*
        FROM (SELECT i.idx, i.message_id, private.address_hash(i.to_address) AS address_hash,
                     sha256(convert_to(i.channel || ':' || i.body, 'UTF8')) AS content_hash
                FROM unnest(v_items) i WHERE i.outcome IN ('accept', 'schedule') AND i.category <> 'compliance') w
       ORDER BY w.address_hash, w.content_hash, w.idx
    ), taken AS (
      INSERT INTO app.recent_contents AS r (tenant_id, address_hash, content_hash, last_at, message_id)
      SELECT p_tenant_id, w.address_hash, w.content_hash, v_now, w.message_id FROM wanted w
      ON CONFLICT (tenant_id, address_hash, content_hash) DO UPDATE
        SET last_at = excluded.last_at, message_id = excluded.message_id
        WHERE r.last_at <= excluded.last_at - v_dedup_window
      RETURNING r.message_id
    )
    SELECT ARRAY(
      SELECT ROW(i.idx, i.key, i.hash, i.to_address, i.from_address, i.body,
                 i.problem_status, i.problem_code, i.problem_detail, i.problem_hint,
                 CASE WHEN d.dup THEN 'reject' ELSE i.outcome END,
                 i.message_id, i.created_at, CASE WHEN d.dup THEN NULL ELSE i.attempt_id END, i.response,
                 i.channel, i.vertical, i.category,
                 CASE WHEN d.dup THEN jsonb_build_array(jsonb_build_object(
                        'code', 'duplicate_content', 'window_seconds', extract(epoch FROM v_dedup_window)::int))
                      ELSE i.reasons END)::private.intake_item
        FROM unnest(v_items) i
       CROSS JOIN LATERAL (SELECT i.outcome IN ('accept', 'schedule')
                                  AND i.message_id NOT IN (SELECT t.message_id FROM taken t) AS dup) d
       ORDER BY i.idx)
      INTO v_items;
  END IF;

  -- 7. The messages, their attempts, events and jobs.
  WITH new AS (
    SELECT * FROM unnest(v_items) i WHERE i.outcome IN ('accept', 'reject', 'schedule')
  ), messages AS (
    INSERT INTO app.messages (id, created_at, tenant_id, api_key_id, channel, to_address, from_address,
                              body, status, idempotency_key, updated_at, vertical, category, reasons,
                              error_code, error_message, completed_at, scheduled_at)
    SELECT n.message_id, n.created_at, p_tenant_id, p_api_key_id, n.channel, n.to_address, n.from_address,
           n.body, CASE n.outcome WHEN 'accept' THEN 'queued' WHEN 'schedule' THEN 'scheduled' ELSE 'rejected' END,
           n.key, n.created_at, n.vertical, n.category, n.reasons,
           CASE WHEN n.outcome = 'reject' THEN n.reasons -> 0 ->> 'code' END,
           CASE WHEN n.outcome = 'reject' THEN 'Not sent: the recipient is not eligible (see reasons).' END,
           CASE WHEN n.outcome = 'reject' THEN n.created_at END,
           CASE WHEN n.outcome = 'schedule' THEN (n.reasons -> 0 ->> 'next_allowed_at')::timestamptz END
      FROM new n
    RETURNING *
  ), attempts AS (
    INSERT INTO app.message_attempts (id, message_created_at, message_id, tenant_id, attempt_no,
                                      channel, provider)
    SELECT n.attempt_id, n.created_at, n.message_id, p_tenant_id, 1, n.channel, 'twilio'
      FROM new n WHERE n.outcome IN ('accept', 'schedule')
  ), events AS (
    INSERT INTO app.message_events (message_created_at, message_id, tenant_id, attempt_id, event_type, status,
                                    error_code, details)
    SELECT n.created_at, n.message_id, p_tenant_id, n.attempt_id,
           CASE n.outcome WHEN 'accept' THEN 'accepted' WHEN 'schedule' THEN 'deferred' ELSE 'rejected' END,
           CASE n.outcome WHEN 'accept' THEN 'queued' WHEN 'schedule' THEN 'scheduled' ELSE 'rejected' END,
           n.reasons -> 0 ->> 'code',
           CASE WHEN n.outcome <> 'accept'
                THEN jsonb_strip_nulls(jsonb_build_object(
                       'stage', 'accept', 'decision', CASE WHEN n.outcome = 'reject' THEN 'rejected' ELSE 'deferred' END,
                       'reasons', n.reasons, 'next_allowed_at', n.reasons -> 0 -> 'next_allowed_at', 'rules', v_rules))
                ELSE jsonb_build_object('rules', v_rules) END
      FROM new n
  ), responses AS (
    SELECT m.id, private.message_json(m::app.messages) AS response FROM messages m
  ), keys AS (
    UPDATE app.idempotency_keys k
       SET message_id = n.message_id, message_created_at = n.created_at, response = r.response
      FROM new n JOIN responses r ON r.id = n.message_id
     WHERE k.tenant_id = p_tenant_id AND k.key = n.key
  )
  SELECT ARRAY(
    SELECT ROW(i.idx, i.key, i.hash, i.to_address, i.from_address, i.body,
               i.problem_status, i.problem_code, i.problem_detail, i.problem_hint, i.outcome,
               i.message_id, i.created_at, i.attempt_id, coalesce(r.response, i.response), i.channel, i.vertical,
               i.category, i.reasons)::private.intake_item
      FROM unnest(v_items) i LEFT JOIN responses r ON r.id = i.message_id
     ORDER BY i.idx)
    INTO v_items;

  PERFORM private.enqueue_jobs('send_sms', array_agg(jsonb_build_object('attempt_id', i.attempt_id) ORDER BY i.idx),
                               array_agg(CASE WHEN i.outcome = 'schedule'
                                              THEN (i.reasons -> 0 ->> 'next_allowed_at')::timestamptz END
                                         ORDER BY i.idx))
     FROM unnest(v_items) i WHERE i.outcome IN ('accept', 'schedule')
   HAVING count(*) > 0;

  -- 8. A key's later items in the same batch: the earlier item's outcome.
  RETURN (
    SELECT coalesce(jsonb_agg(
             CASE
               WHEN o.outcome IN ('accept', 'reject', 'schedule') THEN jsonb_build_object('index', o.idx, 'status', 201, 'message', o.response)
               WHEN o.outcome = 'replay' THEN jsonb_build_object('index', o.idx, 'status', 200,
                                                                 'replayed', true, 'message', o.response)
               WHEN o.outcome = 'conflict' THEN jsonb_build_object('index', o.idx, 'status', 409, 'problem',
                 jsonb_build_object('status', 409, 'code', 'idempotency_key_reused',
                                    'detail', 'This Idempotency-Key was used with a different request.',
                                    'hint', 'Use a new key for a new request.'))
               ELSE jsonb_build_object('index', o.idx, 'status', o.problem_status, 'problem',
                 jsonb_strip_nulls(jsonb_build_object('status', o.problem_status, 'code', o.problem_code,
                                                      'detail', o.problem_detail, 'hint', o.problem_hint)))
             END ORDER BY o.idx), '[]')
      FROM (
        SELECT i.idx,
               CASE WHEN i.outcome <> 'duplicate' THEN i.outcome
                    WHEN f.hash <> i.hash THEN 'conflict'
                    WHEN f.outcome IN ('accept', 'reject', 'schedule') THEN 'replay'
                    ELSE f.outcome END AS outcome,
               coalesce(f.response, i.response) AS response,
               i.problem_status, i.problem_code, i.problem_detail, i.problem_hint
          FROM unnest(v_items) i
          LEFT JOIN (SELECT DISTINCT ON (u.key) u.* FROM unnest(v_items) u
                      WHERE u.key IS NOT NULL ORDER BY u.key, u.idx) f
            ON i.outcome = 'duplicate' AND f.key = i.key
      ) o);
END
$$;
COMMENT ON FUNCTION private.accept_messages(uuid, text, uuid, jsonb, boolean) IS
  'Set-based intake of message requests: validation, idempotency keys, messages + attempts + events + jobs.';
