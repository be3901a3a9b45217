-- The one eligibility rule set, set-based: for each candidate (a message about to be
-- accepted, or an attempt about to be handed to a provider), whether it may be sent
-- now, the machine-readable reasons when not, and -- when it is only deferred -- the
-- next time it may be. Blocking reasons (the message is rejected):
--   opted_out   an applicable opt-out not lifted by a newer opt-in. Applicable: the
--               recipient's address, the message's channel or 'all', and a scope on the
--               message's path (global; its tenant; its tenant's vertical; its tenant's
--               sender). The most restrictive wins: an opt-in lifts an opt-out only if
--               Hermes recorded it later (a higher ledger id: the order of recording,
--               not the caller's occurred_at) and it is of the same or a broader scope
--               (same cell, or tenant over vertical/sender, global over all) and covers
--               its channel (the same channel, or all).
--   suppressed  the address is on one of the tenant's lists or a global one
--               (do_not_contact, litigator, hard_bounce, complaint, erasure).
--   cooldown    marketing with a vertical: the tenant contacted this recipient within
--               the cooldown -- the same vertical (or an unknown one, '*') within
--               cooldown_same (90 days), another within cooldown_cross (45 days), per
--               tenant and vertical policy -- or an earlier candidate of the same batch
--               goes to them. A message's own earlier contact (a retry) does not count.
--   quiet_hours (blocking only when no window opens within 7 days, e.g. a number whose
--               prefix spans zones too far apart; detail no_window)
-- Deferring reason (next_allowed_at is set; the message waits, it is not refused):
--   quiet_hours marketing by phone outside the recipient's window: the zones of its
--               number (private.phone_prefix_zones, longest prefix; a number in several
--               zones must be inside the window in each), and the window is the
--               intersection of every applicable legal rule (private.quiet_hour_rules:
--               default, country, state, weekday) and the tenant's policy, evaluated
--               per local day (DST-safe: local wall times are converted per date).
-- Reasons are [{code, ...}] ordered by code; 'rules' gives the versions in force.
-- Callers that act on the answer (the claim) take private.lock_addresses first, in an
-- earlier statement, so that what this reads is everything committed before the lock.
CREATE OR REPLACE FUNCTION private.send_eligibility(p_candidates private.send_candidate[], p_now timestamptz)
RETURNS TABLE (idx int, eligible boolean, reasons jsonb, next_allowed_at timestamptz)
LANGUAGE plpgsql STABLE  -- not sql: PostgreSQL < 18 plans a SQL function's body on every call
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN QUERY
  WITH c AS (
    SELECT x.*, private.address_hash(x.to_address) AS hash,
           coalesce(tp.quiet_start, time '08:00') AS quiet_start, coalesce(tp.quiet_end, time '21:00') AS quiet_end,
           coalesce(vp.cooldown_same, tp.cooldown_same, interval '90 days') AS cooldown_same,
           coalesce(vp.cooldown_cross, tp.cooldown_cross, interval '45 days') AS cooldown_cross
      FROM unnest(p_candidates) x
      LEFT JOIN app.tenant_policies tp ON tp.tenant_id = x.tenant_id
      LEFT JOIN app.vertical_policies vp ON vp.tenant_id = x.tenant_id AND vp.vertical = x.vertical
  ), cells AS (
    SELECT c.idx, s.*,
           CASE s.scope WHEN 'global' THEN 3 WHEN 'tenant' THEN 2 ELSE 1 END AS breadth
      FROM c
     CROSS JOIN LATERAL (
       SELECT cs.* FROM app.consent_state cs
        WHERE cs.tenant_id = c.tenant_id AND cs.address_hash = c.hash
          AND cs.channel IN (c.channel, 'all')
          AND (cs.scope = 'tenant' OR (cs.scope = 'vertical' AND cs.scope_ref = c.vertical)
               OR (cs.scope = 'sender' AND cs.scope_ref = c.from_address))
       UNION ALL
       SELECT cs.* FROM app.consent_state cs
        WHERE cs.tenant_id IS NULL AND cs.address_hash = c.hash AND cs.channel IN (c.channel, 'all')
     ) s
  ), opted_out AS (
    -- (Hermes's own keyword replies -- category compliance -- confirm an opt-out.)
    SELECT o.idx, jsonb_strip_nulls(jsonb_build_object(
             'code', 'opted_out', 'scope', o.scope, 'channel', o.channel,
             'vertical', CASE WHEN o.scope = 'vertical' THEN o.scope_ref END,
             'sender', CASE WHEN o.scope = 'sender' THEN o.scope_ref END,
             'consent_event_id', o.last_opt_out_id, 'occurred_at', o.last_opt_out_at)) AS reason
      FROM cells o
     WHERE o.last_opt_out_at IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM c WHERE c.idx = o.idx AND c.category = 'compliance')
       AND NOT EXISTS (
         SELECT 1 FROM cells i
          WHERE i.idx = o.idx AND i.last_opt_in_id > o.last_opt_out_id
            AND (i.channel = 'all' OR i.channel = o.channel)
            AND (i.breadth > o.breadth OR (i.scope = o.scope AND i.scope_ref = o.scope_ref)))
  ), suppressed AS (
    SELECT c.idx, jsonb_build_object(
             'code', 'suppressed', 'list', s.list,
             'scope', CASE WHEN s.tenant_id IS NULL THEN 'global' ELSE 'tenant' END) AS reason
      FROM c
     CROSS JOIN LATERAL (
       SELECT sp.tenant_id, sp.list FROM app.suppressions sp
        WHERE sp.tenant_id = c.tenant_id AND sp.address_hash = c.hash
       UNION ALL
       SELECT sp.tenant_id, sp.list FROM app.suppressions sp
        WHERE sp.tenant_id IS NULL AND sp.address_hash = c.hash
     ) s
  ), outreach AS (
    -- Cooldowns apply to marketing that names a vertical.
    -- (nth: the how-manieth message of the batch to this address; the steps of one
    -- message to one address are one contact)
    SELECT o.*, dense_rank() OVER (PARTITION BY o.tenant_id, o.hash ORDER BY o.first_idx) AS nth
      FROM (SELECT c.*, min(c.idx) OVER (PARTITION BY c.tenant_id, c.hash,
                                                      coalesce(c.message_id::text, c.idx::text)) AS first_idx
              FROM c WHERE c.category = 'marketing' AND c.vertical IS NOT NULL) o
  ), cooldown AS (
    SELECT o.idx, jsonb_build_object(
             'code', 'cooldown', 'vertical', h.vertical, 'last_contact_at', h.last_contact_at,
             'until', h.last_contact_at + CASE WHEN h.vertical IN (o.vertical, '*') THEN o.cooldown_same
                                               ELSE o.cooldown_cross END) AS reason
      FROM outreach o
      JOIN app.contact_history h ON h.tenant_id = o.tenant_id AND h.address_hash = o.hash
     WHERE (o.message_id IS NULL OR h.last_message_id IS DISTINCT FROM o.message_id)
       AND h.last_contact_at + CASE WHEN h.vertical IN (o.vertical, '*') THEN o.cooldown_same
                                    ELSE o.cooldown_cross END > p_now
    UNION ALL
    SELECT o.idx, jsonb_build_object('code', 'cooldown', 'vertical', o.vertical, 'detail', 'same_batch')
      FROM outreach o WHERE o.nth > 1 AND o.cooldown_same > interval '0'
  ), geo AS (
    -- Quiet hours apply to marketing by phone: the recipient's zones and state.
    SELECT c.idx, c.quiet_start, c.quiet_end, z.zones,
           coalesce(r.country, '*') AS country, coalesce(r.region, '*') AS region
      FROM c
      LEFT JOIN LATERAL (
        SELECT p.zones FROM private.phone_prefix_zones p
         WHERE p.prefix = ANY (ARRAY(SELECT substr(c.to_address, 2, n) FROM generate_series(1, 12) n))
         ORDER BY length(p.prefix) DESC LIMIT 1) z ON true
      LEFT JOIN private.phone_prefix_regions r ON r.prefix = substr(c.to_address, 2, 4)
     WHERE c.category = 'marketing' AND c.channel IN ('sms', 'whatsapp') AND c.to_address LIKE '+%'
  ), zone_days AS (
    SELECT g.idx, g.quiet_start, g.quiet_end, g.country, g.region, zn.zone,
           ((p_now AT TIME ZONE zn.zone)::date + k) AS day
      FROM geo g
     CROSS JOIN LATERAL unnest(coalesce(g.zones, ARRAY['UTC'])) zn(zone)
     CROSS JOIN generate_series(-1, 7) k
  ), windows AS (
    SELECT d.idx, d.zone,
           tstzrange((d.day + greatest(d.quiet_start, max(q.start_local))) AT TIME ZONE d.zone,
                     (d.day + least(d.quiet_end, min(q.end_local))) AT TIME ZONE d.zone) AS win
      FROM zone_days d
      JOIN private.quiet_hour_rules q
        ON (q.country = '*' OR (q.country = d.country AND q.region IN ('*', d.region)))
       AND (q.isodow IS NULL OR q.isodow = extract(isodow FROM d.day))
     GROUP BY d.idx, d.zone, d.day, d.quiet_start, d.quiet_end
    HAVING greatest(d.quiet_start, max(q.start_local)) < least(d.quiet_end, min(q.end_local))
  ), zone_count AS (
    SELECT d.idx, count(DISTINCT d.zone) AS zones FROM zone_days d GROUP BY d.idx
  ), opening AS MATERIALIZED (   -- computed once for the batch (inlined, it ran per candidate)
    -- The earliest instant from now on inside a window in every zone of the number: of
    -- the candidate instants (now, or a window's start), those that as many zones'
    -- windows contain as the number has zones. Joined on idx: each candidate's few
    -- windows only, whatever the batch size.
    SELECT o.idx, min(o.t) AS t
      FROM (SELECT s.idx, s.t
              FROM (SELECT w.idx, greatest(lower(w.win), p_now) AS t FROM windows w WHERE upper(w.win) > p_now) s
              JOIN windows w2 ON w2.idx = s.idx AND w2.win @> s.t
              JOIN zone_count zc ON zc.idx = s.idx
             GROUP BY s.idx, s.t, zc.zones
            HAVING count(DISTINCT w2.zone) = zc.zones) o
     GROUP BY o.idx
  ), quiet AS (
    SELECT g.idx, o.t AS next_at,
           jsonb_strip_nulls(jsonb_build_object(
             'code', 'quiet_hours', 'zones', to_jsonb(coalesce(g.zones, ARRAY['UTC'])),
             'region', CASE WHEN g.region <> '*' THEN g.country || '-' || g.region END,
             'next_allowed_at', o.t, 'detail', CASE WHEN o.t IS NULL THEN 'no_window' END)) AS reason
      FROM geo g LEFT JOIN opening o ON o.idx = g.idx
     WHERE o.t IS NULL OR o.t > p_now
  ), blocking AS (
    SELECT b.idx, jsonb_agg(b.reason ORDER BY b.reason ->> 'code', b.reason::text) AS reasons
      FROM (SELECT o.idx, o.reason FROM opted_out o
            UNION ALL SELECT s.idx, s.reason FROM suppressed s
            UNION ALL SELECT k.idx, k.reason FROM cooldown k
            UNION ALL SELECT q.idx, q.reason FROM quiet q WHERE q.next_at IS NULL) b
     GROUP BY b.idx
  )
  SELECT c.idx,
         b.reasons IS NULL AND q.idx IS NULL,
         coalesce(b.reasons, CASE WHEN q.idx IS NOT NULL THEN jsonb_build_array(q.reason) END, '[]'::jsonb),
         CASE WHEN b.reasons IS NULL THEN q.next_at END
    FROM c
    LEFT JOIN blocking b ON b.idx = c.idx
    LEFT JOIN quiet q ON q.idx = c.idx AND q.next_at IS NOT NULL
   ORDER BY c.idx;
END
$$;
COMMENT ON FUNCTION private.send_eligibility(private.send_candidate[], timestamptz) IS
  'Eligibility of a batch of sends: (idx, eligible, reasons, next_allowed_at); one query for the batch.';

-- One send, by its parts (operators, tests, the dry-run API).
CREATE OR REPLACE FUNCTION private.check_send_eligibility(
  p_tenant_id uuid, p_channel text, p_to text, p_from text DEFAULT NULL,
  p_vertical text DEFAULT NULL, p_category text DEFAULT 'marketing', p_now timestamptz DEFAULT now(),
  OUT eligible boolean, OUT reasons jsonb, OUT next_allowed_at timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT e.eligible, e.reasons, e.next_allowed_at
    FROM private.send_eligibility(
           ARRAY[ROW(0, p_tenant_id, p_channel, p_to, p_from, p_vertical, p_category, NULL)::private.send_candidate],
           p_now) e
$$;
COMMENT ON FUNCTION private.check_send_eligibility(uuid, text, text, text, text, text, timestamptz) IS
  'Whether one send is eligible now: eligible, reasons [{code, ...}], next_allowed_at when deferred.';

-- The versions of the rules a decision was made under, recorded with it (and shown by
-- api.message_decisions): this rule set's own version, the tenant's policy version (0:
-- the defaults) and the legal quiet-hour rules' (private.settings quiet_hour_rules).
CREATE OR REPLACE FUNCTION private.rules_in_force(p_policy_version int)
RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  SELECT jsonb_build_object(
    'eligibility', 1, 'policy', coalesce(p_policy_version, 0),
    'quiet_hour_rules', (SELECT s.value FROM private.settings s WHERE s.key = 'quiet_hour_rules'))
$$;
COMMENT ON FUNCTION private.rules_in_force(int) IS
  'The rule versions a decision records: {eligibility, policy, quiet_hour_rules}.';
