-- The one eligibility rule set, set-based: for each candidate (a message about to be
-- accepted, or an attempt about to be handed to a provider), whether it may be sent
-- now, the machine-readable reasons when not, and -- when it is only deferred -- the
-- next time it may be. Blocking reasons:
--   opted_out   an applicable opt-out not lifted by a newer opt-in. Applicable: the
--               recipient's address, the message's channel or 'all', and a scope on the
--               message's path (global; its tenant; its tenant's vertical; its tenant's
--               sender). The most restrictive wins: an opt-in lifts an opt-out only if
--               it is newer (occurred_at) and of the same or a broader scope (same cell,
--               or tenant over vertical/sender, global over all) and covers its channel
--               (the same channel, or all). A tie goes to the opt-out.
--   suppressed  the address is on one of the tenant's lists or a global one
--               (do_not_contact, litigator, hard_bounce, complaint, erasure).
-- Reasons are [{code, ...}] ordered by code. Callers that act on the answer (the
-- claim) take private.lock_addresses first, in an earlier statement, so that what
-- this reads is everything committed before the lock.
CREATE OR REPLACE FUNCTION private.send_eligibility(p_candidates private.send_candidate[], p_now timestamptz)
RETURNS TABLE (idx int, eligible boolean, reasons jsonb, next_allowed_at timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  WITH c AS (
    SELECT x.*, private.address_hash(x.to_address) AS hash FROM unnest(p_candidates) x
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
    SELECT o.idx, jsonb_strip_nulls(jsonb_build_object(
             'code', 'opted_out', 'scope', o.scope, 'channel', o.channel,
             'vertical', CASE WHEN o.scope = 'vertical' THEN o.scope_ref END,
             'sender', CASE WHEN o.scope = 'sender' THEN o.scope_ref END,
             'consent_event_id', o.last_opt_out_id, 'occurred_at', o.last_opt_out_at)) AS reason
      FROM cells o
     WHERE o.last_opt_out_at IS NOT NULL
       AND NOT EXISTS (
         SELECT 1 FROM cells i
          WHERE i.idx = o.idx AND i.last_opt_in_at > o.last_opt_out_at
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
  ), blocking AS (
    SELECT b.idx, jsonb_agg(b.reason ORDER BY b.reason ->> 'code', b.reason::text) AS reasons
      FROM (SELECT o.idx, o.reason FROM opted_out o
            UNION ALL
            SELECT s.idx, s.reason FROM suppressed s) b
     GROUP BY b.idx
  )
  SELECT c.idx, b.reasons IS NULL, coalesce(b.reasons, '[]'::jsonb), NULL::timestamptz
    FROM c LEFT JOIN blocking b ON b.idx = c.idx
   ORDER BY c.idx
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
           ARRAY[ROW(0, p_tenant_id, p_channel, p_to, p_from, p_vertical, p_category)::private.send_candidate],
           p_now) e
$$;
COMMENT ON FUNCTION private.check_send_eligibility(uuid, text, text, text, text, text, timestamptz) IS
  'Whether one send is eligible now: eligible, reasons [{code, ...}], next_allowed_at when deferred.';
