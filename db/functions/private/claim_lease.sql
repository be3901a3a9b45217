-- How long a claim holds its attempt (private.settings claim_lease, 60 s by default):
-- while it runs another worker defers instead of re-claiming. One definition for every
-- function that needs it (claim_attempts, reconcile_attempt, check_worker_settings).
CREATE OR REPLACE FUNCTION private.claim_lease()
RETURNS interval
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce((SELECT value::interval FROM private.settings WHERE key = 'claim_lease'),
                  interval '60 seconds')
$$;
COMMENT ON FUNCTION private.claim_lease() IS 'The claim lease (private.settings claim_lease; 60 s by default).';

-- How long a claimed attempt whose provider cannot be asked (no lookup: SES, FCM,
-- WhatsApp) waits for a receipt after its last claim before its hand-off is 'unknown'
-- (private.settings reconcile_window; 10 minutes by default).
CREATE OR REPLACE FUNCTION private.reconcile_window()
RETURNS interval
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce((SELECT value::interval FROM private.settings WHERE key = 'reconcile_window'), interval '10 minutes')
$$;
COMMENT ON FUNCTION private.reconcile_window() IS
  'How long an unknown hand-off at a provider without lookups waits for a receipt (reconcile_window; 10 min).';

-- How long after a provider call that got no answer (timeout, connection lost; a 5xx
-- at a provider that can be asked) its attempt is reconciled at the earliest
-- (private.settings reconcile_delay; 2 minutes by default): a provider lists a message
-- some time after creating it, and an empty listing before then would mean a resend of
-- a message the provider has (app.record_send_error, app.reconcile_attempt).
CREATE OR REPLACE FUNCTION private.reconcile_delay()
RETURNS interval
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce((SELECT value::interval FROM private.settings WHERE key = 'reconcile_delay'), interval '2 minutes')
$$;
COMMENT ON FUNCTION private.reconcile_delay() IS
  'How long an unanswered provider call waits before it is reconciled (reconcile_delay; 2 min).';
