-- A worker's first call: are its settings compatible with the database's? A provider
-- call that may outlast the claim lease (private.settings claim_lease) would let
-- another worker re-claim -- and reconcile, or resend -- an attempt whose first call is
-- still in flight. The timeout may take at most half the lease: the other half covers
-- the batch's own SQL, its linger and a busy event loop. Refused with HM422
-- provider_timeout_exceeds_lease (the worker exits with it); returns the lease and the
-- longest timeout it admits otherwise.
CREATE OR REPLACE FUNCTION app.check_worker_settings(p_provider_timeout interval)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_lease  interval := private.claim_lease();
  v_max    interval;
BEGIN
  IF p_provider_timeout IS NULL OR p_provider_timeout <= interval '0' THEN
    PERFORM private.raise_problem(422, 'invalid_provider_timeout', 'The provider timeout must be positive.');
  END IF;
  v_max := v_lease / 2;
  IF p_provider_timeout > v_max THEN
    PERFORM private.raise_problem(422, 'provider_timeout_exceeds_lease',
      format('A provider timeout of %s may outlast half the claim lease of %s.', p_provider_timeout, v_lease),
      format('Set HERMES_PROVIDER_TIMEOUT to at most %s seconds, or raise claim_lease in private.settings.',
             extract(epoch FROM v_max)::float8));
  END IF;
  RETURN jsonb_build_object('claim_lease_seconds', extract(epoch FROM v_lease)::float8,
                            'max_provider_timeout_seconds', extract(epoch FROM v_max)::float8);
END
$$;
COMMENT ON FUNCTION app.check_worker_settings(interval) IS
  'Refuses a provider timeout that the claim lease does not cover (HM422 provider_timeout_exceeds_lease).';
GRANT EXECUTE ON FUNCTION app.check_worker_settings(interval) TO hermes_worker;
