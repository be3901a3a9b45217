-- Periodic upkeep, run by the workers' pgqueuer schedule "maintenance" (and by
-- migrate): monthly partitions ahead, idempotency keys older than 7 days pruned.
CREATE OR REPLACE FUNCTION app.run_maintenance()
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_created text[];
  v_pruned  bigint;
BEGIN
  SELECT coalesce(array_agg(p), '{}') INTO v_created FROM private.ensure_partitions(3) p;
  DELETE FROM app.idempotency_keys WHERE created_at < now() - interval '7 days';
  GET DIAGNOSTICS v_pruned = ROW_COUNT;
  RETURN jsonb_build_object('partitions_created', to_jsonb(v_created), 'idempotency_keys_pruned', v_pruned);
END
$$;
COMMENT ON FUNCTION app.run_maintenance() IS 'Creates partitions ahead and prunes old idempotency keys.';
GRANT EXECUTE ON FUNCTION app.run_maintenance() TO hermes_worker;
