-- Intake of messages, set-based: the one implementation behind app.submit_message
-- (one item) and app.submit_messages (a batch of up to 1,000). In the caller's
-- transaction: per-item validation (private.validate_message), per-item idempotency
-- keys, the contact's addresses for steps addressed to a contact, the eligibility of
-- every step, then every valid new message with one attempt per step, its 'accepted'
-- event and the send job of the step that goes first (outbox), in a few statements
-- whatever the batch size.
-- p_items = [{"request": {...}, "key": text|null}, ...]. Returns one result per item,
-- in order: {index, status, message?, replayed?, problem?}:
--   201 accepted; 200 replayed (same key, same request: the first response);
--   409 idempotency_key_reused (same key, other request); 4xx the item's problem.
-- Within one batch, a key used twice counts once: the later item replays the earlier
-- (or is 409 when its request differs). p_internal: Hermes's own messages (keyword
-- replies, category compliance), which no caller may send.
--
-- The steps of a message (validated: [{channel, to, from, content, timeout_seconds}])
-- are planned here: the first step that may go now, or later (quiet hours), is the
-- one that starts ('pending'; the message 'queued', or 'scheduled' when it must wait);
-- the steps before it are 'rejected' with their reasons (skipped), the ones after it
-- 'waiting' (each is checked again at its own claim) -- except those with no address
-- (a contact without one for the step's channel): 'rejected' (missing_address) now.
-- No step may go: the message is
-- 'rejected', with the reasons of its steps.
-- intake_item: (idx, key, hash, to_address, from_address, body, problem_status,
-- problem_code, problem_detail, problem_hint, outcome, message_id, created_at,
-- attempt_id, response, channel, vertical, category, reasons, steps, contact_id).
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
  v_defaults jsonb;
  v_senders jsonb;
BEGIN
  SELECT coalesce(p.default_category, 'marketing'), coalesce(p.content_dedup_window, interval '10 minutes'),
         private.rules_in_force(p.version),
         jsonb_strip_nulls(jsonb_build_object(
           'sms', p_default_from, 'email', t.default_email_from, 'whatsapp', t.default_whatsapp_from,
           'channels', to_jsonb(coalesce(p.cascade_channels, '{sms}')),
           'timeouts', coalesce(p.step_timeouts, '{"sms": 300, "email": 900, "push": 300, "whatsapp": 300}'),
           'providers', coalesce(p.channel_providers, '{}'), 'environment', t.environment))
    INTO v_default_category, v_dedup_window, v_rules, v_defaults
    FROM (SELECT 1) one
    LEFT JOIN app.tenants t ON t.id = p_tenant_id
    LEFT JOIN app.tenant_policies p ON p.tenant_id = p_tenant_id;

  -- 1. Shape, key and validation of every item.
  SELECT coalesce(array_agg(ROW(
           e.n - 1, k.key, sha256(convert_to(coalesce(e.item -> 'request', 'null'::jsonb)::text, 'UTF8')),
           v.to_address, v.from_address, v.body,
           CASE WHEN k.bad THEN 422 ELSE v.problem_status END,
           CASE WHEN k.bad THEN 'invalid_idempotency_key' ELSE v.problem_code END,
           CASE WHEN k.bad THEN 'Idempotency-Key must be 1 to 255 characters.' ELSE v.problem_detail END,
           CASE WHEN k.bad THEN NULL ELSE v.problem_hint END,
           NULL, NULL, NULL, NULL, NULL, v.channel, v.vertical, v.category, NULL,
           v.steps, v.contact_id)::private.intake_item ORDER BY e.n), '{}')
    INTO v_items
    FROM jsonb_array_elements(p_items) WITH ORDINALITY e(item, n)
    CROSS JOIN LATERAL (
      SELECT CASE WHEN jsonb_typeof(e.item -> 'key') = 'string' THEN e.item ->> 'key' END AS key,
             (jsonb_typeof(e.item -> 'key') NOT IN ('string', 'null')
              OR length(e.item ->> 'key') NOT BETWEEN 1 AND 255) AS bad) k0
    CROSS JOIN LATERAL (SELECT CASE WHEN k0.bad THEN NULL ELSE k0.key END AS key,
                               coalesce(k0.bad, false) AS bad) k
    CROSS JOIN LATERAL private.validate_message(e.item -> 'request', p_default_from, p_internal, v_defaults) v;

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
               NULL, NULL, NULL, p.response, i.channel, i.vertical, i.category, i.reasons,
               i.steps, i.contact_id)::private.intake_item
      FROM (SELECT u.*, min(u.idx) OVER (PARTITION BY u.key) AS first_use FROM unnest(v_items) u) i
      LEFT JOIN app.idempotency_keys p ON p.tenant_id = p_tenant_id AND p.key = i.key
     ORDER BY i.idx);

  -- 2b. Messages to a contact: the contact must be the tenant's; each step without a
  --     "to" gets the contact's address for its channel (the most confident, then the
  --     newest link of the identity graph); push has none there (missing_address).
  IF EXISTS (SELECT 1 FROM unnest(v_items) i WHERE i.outcome = 'accept' AND i.contact_id IS NOT NULL) THEN
    v_items := ARRAY(
      SELECT ROW(i.idx, i.key, i.hash, i.to_address, i.from_address, i.body,
                 CASE WHEN x.unknown THEN 422 ELSE i.problem_status END,
                 CASE WHEN x.unknown THEN 'unknown_contact' ELSE i.problem_code END,
                 CASE WHEN x.unknown THEN 'No such contact.' ELSE i.problem_detail END,
                 CASE WHEN x.unknown THEN 'contact_id is the id of one of your identities (api.identities).'
                      ELSE i.problem_hint END,
                 CASE WHEN x.unknown THEN 'problem' ELSE i.outcome END,
                 NULL, NULL, NULL, i.response, i.channel, i.vertical, i.category, i.reasons,
                 coalesce(r.steps, i.steps), i.contact_id)::private.intake_item
        FROM unnest(v_items) i
        LEFT JOIN app.identities c ON c.tenant_id = p_tenant_id AND c.id = i.contact_id AND i.outcome = 'accept'
        CROSS JOIN LATERAL (SELECT i.outcome = 'accept' AND i.contact_id IS NOT NULL AND c.id IS NULL AS unknown) x
        LEFT JOIN LATERAL (
          SELECT jsonb_agg(CASE WHEN s.step ->> 'to' IS NOT NULL THEN s.step
                                ELSE s.step || jsonb_build_object('to', CASE
                                  WHEN s.step ->> 'channel' = 'email' THEN (
                                    SELECT ea.address FROM app.identity_emails ie
                                      JOIN app.email_addresses ea ON ea.id = ie.email_id
                                     WHERE ie.identity_id = c.id
                                     ORDER BY ie.confidence DESC, ie.created_at DESC, ea.id LIMIT 1)
                                  WHEN s.step ->> 'channel' IN ('sms', 'whatsapp') THEN (
                                    SELECT pn.e164 FROM app.identity_phones ip
                                      JOIN app.phone_numbers pn ON pn.id = ip.phone_id
                                     WHERE ip.identity_id = c.id
                                     ORDER BY ip.confidence DESC, ip.created_at DESC, pn.id LIMIT 1)
                                END) END ORDER BY s.n) AS steps
            FROM jsonb_array_elements(i.steps) WITH ORDINALITY s(step, n)
           WHERE c.id IS NOT NULL) r ON true
       ORDER BY i.idx);
  END IF;

  -- 2c. Senders: every step's "from" (given, or the tenant's default) must be one the
  --     tenant may send from (private.senders_allowed: registered to it, or shared and
  --     the tenant not a production one; the claim asks again). Else the item is 422
  --     sender_not_allowed, naming its first such step.
  IF EXISTS (SELECT 1 FROM unnest(v_items) i WHERE i.outcome = 'accept') THEN
    WITH st AS (
      SELECT i.idx, s.n::int AS n, jsonb_array_length(i.steps) AS steps, s.step ->> 'channel' AS channel,
             s.step ->> 'from' AS sender
        FROM unnest(v_items) i CROSS JOIN LATERAL jsonb_array_elements(i.steps) WITH ORDINALITY s(step, n)
       WHERE i.outcome = 'accept'
    )
    SELECT coalesce(jsonb_object_agg(b.idx, jsonb_build_object(
             'detail', format('%s"from" %s is not a sender of yours.',
                              CASE WHEN b.steps > 1 THEN format('Step %s (%s): ', b.n, b.channel) END, left(b.sender, 80)))), '{}')
      INTO v_senders
      FROM (SELECT DISTINCT ON (st.idx) st.*
              FROM st JOIN private.senders_allowed(ARRAY(
                             SELECT ROW(st.idx * 8 + st.n, p_tenant_id, st.channel, NULL, st.sender, NULL, NULL,
                                        NULL)::private.send_candidate FROM st)) a
                ON a.idx = st.idx * 8 + st.n AND NOT a.allowed
             ORDER BY st.idx, st.n) b;
    IF v_senders <> '{}' THEN
      v_items := ARRAY(
        SELECT ROW(i.idx, i.key, i.hash, i.to_address, i.from_address, i.body,
                   CASE WHEN x.bad THEN 422 ELSE i.problem_status END,
                   CASE WHEN x.bad THEN 'sender_not_allowed' ELSE i.problem_code END,
                   CASE WHEN x.bad THEN v_senders #>> ARRAY[i.idx::text, 'detail'] ELSE i.problem_detail END,
                   CASE WHEN x.bad THEN 'Send from a number or address registered to you (GET /senders on the read '
                                        'API), or leave "from" out for your default; an operator registers senders.'
                        ELSE i.problem_hint END,
                   CASE WHEN x.bad THEN 'problem' ELSE i.outcome END,
                   NULL, NULL, NULL, i.response, i.channel, i.vertical, i.category, i.reasons,
                   i.steps, i.contact_id)::private.intake_item
          FROM unnest(v_items) i CROSS JOIN LATERAL (SELECT v_senders ? i.idx::text AS bad) x
         ORDER BY i.idx);
    END IF;
  END IF;

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
                 NULL, NULL, NULL, coalesce(i.response, p.response), i.channel, i.vertical, i.category, i.reasons,
                 i.steps, i.contact_id)::private.intake_item
        FROM unnest(v_items) i
        LEFT JOIN app.idempotency_keys p ON p.tenant_id = p_tenant_id AND p.key = i.key
       ORDER BY i.idx);
  END IF;

  -- 4. Eligibility of every step of the new messages (private.send_eligibility, one
  --    query for the batch; the message id lets the steps of one message to one
  --    address count as one contact), with the tenant's default category where a
  --    message names none, and the plan of its steps (see the head of this file). The
  --    step that starts gives the message its channel, recipient, sender and body. No
  --    step may go -> 'reject': stored as 'rejected' with its reasons and answered 201
  --    like any other (readable later, replayed under its key), no job; the step that
  --    starts must wait for quiet hours to end -> 'schedule': stored as 'scheduled', its
  --    job due at the next allowed time. (The claim checks again under the address lock.)
  IF EXISTS (SELECT 1 FROM unnest(v_items) i WHERE i.outcome = 'accept') THEN
    WITH items AS (
      SELECT i.*, private.uuid7(v_now) AS new_id FROM unnest(v_items) i WHERE i.outcome = 'accept'
    ), st AS (
      SELECT i.idx, i.new_id, s.n::int AS n, s.step, i.vertical, coalesce(i.category, v_default_category) AS category
        FROM items i CROSS JOIN LATERAL jsonb_array_elements(i.steps) WITH ORDINALITY s(step, n)
    ), e AS (
      SELECT * FROM private.send_eligibility(
        ARRAY(SELECT ROW(st.idx * 8 + st.n, p_tenant_id, st.step ->> 'channel', st.step ->> 'to',
                         st.step ->> 'from', st.vertical, st.category, st.new_id)::private.send_candidate
                FROM st WHERE st.step ->> 'to' IS NOT NULL), v_now)
    ), se AS (
      SELECT st.idx, st.n, st.step,
             st.step ->> 'to' IS NOT NULL AND e.eligible AS eligible,
             CASE WHEN st.step ->> 'to' IS NULL
                  THEN jsonb_build_array(jsonb_build_object('code', 'missing_address', 'channel', st.step ->> 'channel'))
                  WHEN NOT e.eligible THEN e.reasons END AS reasons,
             CASE WHEN NOT e.eligible THEN e.next_allowed_at END AS next_at
        FROM st LEFT JOIN e ON e.idx = st.idx * 8 + st.n
    ), runs AS (
      SELECT se.idx, min(se.n) FILTER (WHERE se.eligible OR se.next_at IS NOT NULL) AS run, count(*) AS steps
        FROM se GROUP BY se.idx
    ), plans AS (
      SELECT se.idx, r.run,
             jsonb_agg(se.step || jsonb_build_object(
                         'state', CASE WHEN r.run IS NULL OR se.n < r.run THEN 'rejected'
                                       WHEN se.n = r.run THEN 'pending'
                                       -- a later step with no address can never go
                                       WHEN se.step ->> 'to' IS NULL THEN 'rejected'
                                       ELSE 'waiting' END,
                         'reasons', CASE WHEN r.run IS NULL OR se.n <= r.run OR se.step ->> 'to' IS NULL
                                         THEN se.reasons END)
                       ORDER BY se.n) AS steps,
             -- the message's reasons when no step may go: its step's, or every step's (numbered)
             CASE WHEN r.steps = 1 THEN min(se.reasons::text)::jsonb
                  ELSE (SELECT jsonb_agg(x.reason || jsonb_build_object('step', y.n) ORDER BY y.n, x.k)
                          FROM se y CROSS JOIN LATERAL jsonb_array_elements(y.reasons) WITH ORDINALITY x(reason, k)
                         WHERE y.idx = se.idx) END AS all_reasons
        FROM se JOIN runs r ON r.idx = se.idx
       GROUP BY se.idx, r.run, r.steps
    ), planned AS (
      SELECT p.*, se.step AS run_step, se.reasons AS run_reasons, se.next_at AS run_next_at
        FROM plans p LEFT JOIN se ON se.idx = p.idx AND se.n = p.run
    )
    SELECT ARRAY(
      SELECT ROW(i.idx, i.key, i.hash,
                 coalesce(p.run_step ->> 'to', i.to_address), coalesce(p.run_step ->> 'from', i.from_address),
                 coalesce(p.run_step #>> '{content,body}', i.body),
                 i.problem_status, i.problem_code, i.problem_detail, i.problem_hint,
                 CASE WHEN p.idx IS NULL THEN i.outcome
                      WHEN p.run IS NULL THEN 'reject'
                      WHEN p.run_next_at IS NOT NULL THEN 'schedule'
                      ELSE i.outcome END,
                 t.new_id, NULL, NULL, i.response,
                 coalesce(p.run_step ->> 'channel', i.channel), i.vertical,
                 coalesce(i.category, v_default_category),
                 CASE WHEN p.idx IS NOT NULL AND p.run IS NULL THEN p.all_reasons
                      WHEN p.run_next_at IS NOT NULL THEN p.run_reasons END,
                 coalesce(p.steps, i.steps), i.contact_id)::private.intake_item
        FROM unnest(v_items) i
        LEFT JOIN items t ON t.idx = i.idx
        LEFT JOIN planned p ON p.idx = i.idx
       ORDER BY i.idx)
      INTO v_items;
  END IF;

  -- 5. Ids for the new messages: UUIDv7 stamped with one instant; the attempt of the
  --    step that starts with the message's instant.
  v_items := ARRAY(
    SELECT ROW(i.idx, i.key, i.hash, i.to_address, i.from_address, i.body,
               i.problem_status, i.problem_code, i.problem_detail, i.problem_hint, i.outcome,
               i.message_id, private.uuid7_time(i.message_id),
               CASE WHEN i.outcome IN ('accept', 'schedule') THEN private.uuid7(private.uuid7_time(i.message_id)) END,
               i.response, i.channel, i.vertical, i.category, i.reasons, i.steps, i.contact_id)::private.intake_item
      FROM unnest(v_items) i
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
                      ELSE i.reasons END, i.steps, i.contact_id)::private.intake_item
        FROM unnest(v_items) i
       CROSS JOIN LATERAL (SELECT i.outcome IN ('accept', 'schedule')
                                  AND i.message_id NOT IN (SELECT t.message_id FROM taken t) AS dup) d
       ORDER BY i.idx)
      INTO v_items;
  END IF;

  -- 7. The messages, their attempts (one per step), events and jobs.
  WITH new AS (
    SELECT i.*, coalesce((SELECT s.n FROM jsonb_array_elements(i.steps) WITH ORDINALITY s(step, n)
                           WHERE s.step ->> 'state' = 'pending'), 1)::int AS run
      FROM unnest(v_items) i WHERE i.outcome IN ('accept', 'reject', 'schedule')
  ), messages AS (
    INSERT INTO app.messages (id, created_at, tenant_id, api_key_id, channel, to_address, from_address,
                              body, status, idempotency_key, updated_at, vertical, category, reasons,
                              error_code, error_message, completed_at, scheduled_at,
                              steps, current_step, contact_id)
    SELECT n.message_id, n.created_at, p_tenant_id, p_api_key_id, n.channel, n.to_address, n.from_address,
           n.body, CASE n.outcome WHEN 'accept' THEN 'queued' WHEN 'schedule' THEN 'scheduled' ELSE 'rejected' END,
           n.key, n.created_at, n.vertical, n.category, n.reasons,
           CASE WHEN n.outcome = 'reject' THEN n.reasons -> 0 ->> 'code' END,
           CASE WHEN n.outcome = 'reject' THEN 'Not sent: the recipient is not eligible (see reasons).' END,
           CASE WHEN n.outcome = 'reject' THEN n.created_at END,
           CASE WHEN n.outcome = 'schedule' THEN (n.reasons -> 0 ->> 'next_allowed_at')::timestamptz END,
           jsonb_array_length(n.steps), n.run, n.contact_id
      FROM new n
    RETURNING *
  ), attempts AS (
    INSERT INTO app.message_attempts (id, message_created_at, message_id, tenant_id, attempt_no,
                                      channel, provider, provider_account_id, status, to_address,
                                      from_address, content, step_timeout, reasons, error_code, completed_at)
    SELECT CASE WHEN s.n = n.run AND n.attempt_id IS NOT NULL THEN n.attempt_id ELSE private.uuid7(n.created_at) END,
           n.created_at, n.message_id, p_tenant_id, s.n, s.step ->> 'channel', r.provider,
           -- the tenant's own account for that provider (never for sandbox tenants: simulators)
           pa.id,
           x.state, s.step ->> 'to', s.step ->> 'from', s.step -> 'content',
           CASE WHEN s.n < jsonb_array_length(n.steps) THEN (s.step ->> 'timeout_seconds')::int * interval '1 second' END,
           x.reasons, CASE WHEN x.state = 'rejected' THEN x.reasons -> 0 ->> 'code' END,
           CASE WHEN x.state = 'rejected' THEN n.created_at END
      FROM new n
     CROSS JOIN LATERAL jsonb_array_elements(n.steps) WITH ORDINALITY s(step, n)
      JOIN private.providers cp ON cp.channel = s.step ->> 'channel' AND cp.is_default
     -- the tenant's first provider for the channel (app.tenant_policies.channel_providers), or the default
     CROSS JOIN LATERAL (SELECT coalesce(v_defaults #>> ARRAY['providers', s.step ->> 'channel', '0'],
                                         cp.provider) AS provider) r
      LEFT JOIN app.provider_accounts pa
        ON pa.tenant_id = p_tenant_id AND pa.provider = r.provider AND pa.disabled_at IS NULL
       AND v_defaults ->> 'environment' <> 'sandbox'
     CROSS JOIN LATERAL (
       SELECT CASE WHEN n.outcome = 'reject' THEN 'rejected' ELSE s.step ->> 'state' END AS state,
              CASE WHEN n.outcome = 'reject' AND s.step ->> 'state' <> 'rejected' THEN n.reasons
                   ELSE s.step -> 'reasons' END AS reasons) x
    RETURNING id, message_id, message_created_at, attempt_no, status, reasons
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
    UNION ALL
    -- the steps skipped at intake, when another step goes
    SELECT n.created_at, n.message_id, p_tenant_id, a.id, 'rejected',
           CASE n.outcome WHEN 'accept' THEN 'queued' ELSE 'scheduled' END, a.reasons -> 0 ->> 'code',
           jsonb_build_object('stage', 'accept', 'decision', 'skipped', 'step', a.attempt_no,
                              'reasons', a.reasons, 'rules', v_rules)
      FROM new n JOIN attempts a ON a.message_id = n.message_id
     WHERE n.outcome IN ('accept', 'schedule') AND a.status = 'rejected'
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
               i.category, i.reasons, i.steps, i.contact_id)::private.intake_item
      FROM unnest(v_items) i LEFT JOIN responses r ON r.id = i.message_id
     ORDER BY i.idx)
    INTO v_items;

  PERFORM private.enqueue_jobs('send', array_agg(jsonb_build_object('attempt_id', i.attempt_id) ORDER BY i.idx),
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
               WHEN o.problem_status IS NOT NULL THEN jsonb_build_object('index', o.idx, 'status', o.problem_status, 'problem',
                 jsonb_strip_nulls(jsonb_build_object('status', o.problem_status, 'code', o.problem_code,
                                                      'detail', o.problem_detail, 'hint', o.problem_hint)))
               -- never an item without an answer: a bug here is this item's 500, no one else's
               ELSE jsonb_build_object('index', o.idx, 'status', 500, 'problem',
                 jsonb_build_object('status', 500, 'code', 'internal_error',
                                    'detail', 'This item could not be answered; nothing was accepted for it.'))
             END ORDER BY o.idx), '[]')
      FROM (
        SELECT i.idx,
               CASE WHEN i.outcome <> 'duplicate' THEN i.outcome
                    WHEN f.hash <> i.hash THEN 'conflict'
                    WHEN f.outcome IN ('accept', 'reject', 'schedule') THEN 'replay'
                    ELSE f.outcome END AS outcome,
               coalesce(f.response, i.response) AS response,
               -- a later use of a key whose first item was refused gets that refusal
               CASE WHEN i.outcome = 'duplicate' THEN f.problem_status ELSE i.problem_status END AS problem_status,
               CASE WHEN i.outcome = 'duplicate' THEN f.problem_code ELSE i.problem_code END AS problem_code,
               CASE WHEN i.outcome = 'duplicate' THEN f.problem_detail ELSE i.problem_detail END AS problem_detail,
               CASE WHEN i.outcome = 'duplicate' THEN f.problem_hint ELSE i.problem_hint END AS problem_hint
          FROM unnest(v_items) i
          LEFT JOIN (SELECT DISTINCT ON (u.key) u.* FROM unnest(v_items) u
                      WHERE u.key IS NOT NULL ORDER BY u.key, u.idx) f
            ON i.outcome = 'duplicate' AND f.key = i.key
      ) o);
END
$$;
COMMENT ON FUNCTION private.accept_messages(uuid, text, uuid, jsonb, boolean) IS
  'Set-based intake of message requests: validation, idempotency keys, contacts, step plans, messages + attempts + events + jobs.';
