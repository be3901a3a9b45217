-- A worker's first call: are its settings compatible with the database's? A provider
-- call that may last longer than the claim lease (private.settings claim_lease, less a
-- margin for the batch's own SQL) would let another worker re-claim -- and reconcile, or
-- resend -- an attempt whose first call is still in flight. Refused with HM422
-- provider_timeout_exceeds_lease (the worker exits with it); returns the lease and the
-- margin otherwise.
CREATE OR REPLACE FUNCTION app.check_worker_settings(p_provider_timeout interval)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_lease  interval := coalesce(
    (SELECT value::interval FROM private.settings WHERE key = 'claim_lease'), interval '60 seconds');
  v_margin constant interval := interval '10 seconds';
BEGIN
  IF p_provider_timeout IS NULL OR p_provider_timeout <= interval '0' THEN
    PERFORM private.raise_problem(422, 'invalid_provider_timeout', 'The provider timeout must be positive.');
  END IF;
  IF p_provider_timeout > v_lease - v_margin THEN
    PERFORM private.raise_problem(422, 'provider_timeout_exceeds_lease',
      format('A provider timeout of %s leaves no margin in the claim lease of %s.', p_provider_timeout, v_lease),
      format('Set HERMES_PROVIDER_TIMEOUT to at most %s seconds, or raise claim_lease in private.settings.',
             extract(epoch FROM v_lease - v_margin)::int));
  END IF;
  RETURN jsonb_build_object('claim_lease_seconds', extract(epoch FROM v_lease)::float8,
                            'margin_seconds', extract(epoch FROM v_margin)::float8);
END
$$;
COMMENT ON FUNCTION app.check_worker_settings(interval) IS
  'Refuses a provider timeout that the claim lease does not cover (HM422 provider_timeout_exceeds_lease).';
GRANT EXECUTE ON FUNCTION app.check_worker_settings(interval) TO hermes_worker;
