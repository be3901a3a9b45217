-- The set-based form of private.enqueue_job: one pgqueuer job per element, payloads
-- and start times paired by position, in the caller's transaction (outbox). Used by
-- batch intake and batched claims.
CREATE OR REPLACE FUNCTION private.enqueue_jobs(
  p_entrypoint text, p_payloads jsonb[], p_execute_at timestamptz[] DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE  -- not sql: PostgreSQL < 18 plans a SQL function's body on every call
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_n bigint;
BEGIN
  WITH jobs AS (
    INSERT INTO pgqueuer.pgqueuer (priority, entrypoint, payload, execute_after, status)
    SELECT 0, p_entrypoint, convert_to(j.payload::text, 'UTF8'), coalesce(j.execute_at, now()), 'queued'
      FROM unnest(p_payloads, p_execute_at) AS j(payload, execute_at)
    RETURNING id, entrypoint, priority
  ), logged AS (
    INSERT INTO pgqueuer.pgqueuer_log (job_id, status, entrypoint, priority)
    SELECT id, 'queued', entrypoint, priority FROM jobs
  )
  SELECT count(*) INTO v_n FROM jobs;
  RETURN v_n;
END
$$;
COMMENT ON FUNCTION private.enqueue_jobs(text, jsonb[], timestamptz[]) IS
  'Enqueues one pgqueuer job per payload in the current transaction; payloads must hold no secret.';
