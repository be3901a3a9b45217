-- Lost receipts are recovered, not waited out. Carriers do not retry status callbacks
-- reliably; an attempt handed off receipt_lookup_after ago (private.settings, 5
-- minutes) without a final receipt is looked up at the provider by its provider id,
-- and again every receipt_lookup_every (10 minutes) until it is final or the receipt
-- timeout (72 h, app.run_maintenance) ends it 'unknown'.
-- app.due_lookups hands a worker up to p_limit such attempts and stamps them, so
-- another worker does not look them up too: [{attempt_id, provider, provider_message_id,
-- provider_account_id, environment}] -- asked through the account the attempt was sent
-- through (a tenant's own, or the deployment's; a sandbox tenant's: the simulators).
CREATE OR REPLACE FUNCTION app.due_lookups(p_limit int DEFAULT 100)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_after interval := coalesce(
    (SELECT value::interval FROM private.settings WHERE key = 'receipt_lookup_after'), interval '5 minutes');
  v_every interval := coalesce(
    (SELECT value::interval FROM private.settings WHERE key = 'receipt_lookup_every'), interval '10 minutes');
  v_due jsonb;
BEGIN
  WITH due AS (
    SELECT a.id, a.message_created_at
      FROM app.message_attempts a
     WHERE a.status = 'handed_off'
       AND coalesce(a.last_lookup_at, a.handed_off_at) < now() - least(v_after, v_every)
       -- only providers that can be asked (private.providers.lookups: Twilio)
       AND a.provider IN (SELECT p.provider FROM private.providers p WHERE p.lookups)
       AND CASE WHEN a.last_lookup_at IS NULL THEN a.handed_off_at < now() - v_after
                ELSE a.last_lookup_at < now() - v_every END
     ORDER BY coalesce(a.last_lookup_at, a.handed_off_at)
     LIMIT greatest(p_limit, 0)
       FOR UPDATE OF a SKIP LOCKED
  ), stamped AS (
    UPDATE app.message_attempts a
       SET last_lookup_at = now(), lookup_count = a.lookup_count + 1
      FROM due d
     WHERE a.id = d.id AND a.message_created_at = d.message_created_at
    RETURNING a.id, a.provider, a.provider_message_id, a.provider_account_id, a.tenant_id
  )
  SELECT coalesce(jsonb_agg(jsonb_build_object('attempt_id', s.id, 'provider', s.provider,
                                               'provider_message_id', s.provider_message_id,
                                               'provider_account_id', s.provider_account_id,
                                               'environment', t.environment)), '[]')
    INTO v_due FROM stamped s JOIN app.tenants t ON t.id = s.tenant_id;
  RETURN v_due;
END
$$;
COMMENT ON FUNCTION app.due_lookups(int) IS
  'Hand-offs overdue for a final receipt, to look up at the provider (stamped so one worker takes each).';
GRANT EXECUTE ON FUNCTION app.due_lookups(int) TO hermes_worker;

-- What the provider answered to lookups, into the receipt inbox (source 'lookup'):
-- p_results = [{attempt_id, provider, provider_message_id, provider_status,
-- error_code?, error_message?}, ...]. Deduplicated with the callbacks, applied by
-- app.apply_receipts like them. Returns {new}: how many statuses were not known yet.
CREATE OR REPLACE FUNCTION app.record_lookups(p_results jsonb)
RETURNS jsonb
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT jsonb_build_object('new', count(*) FILTER (WHERE o ->> 'outcome' = 'queued'))
    FROM jsonb_array_elements(private.insert_receipts('lookup', coalesce(p_results, '[]'))) o
$$;
COMMENT ON FUNCTION app.record_lookups(jsonb) IS
  'Appends provider lookup answers (statuses) to the receipt inbox.';
GRANT EXECUTE ON FUNCTION app.record_lookups(jsonb) TO hermes_worker;
