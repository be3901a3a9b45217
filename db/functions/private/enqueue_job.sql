-- The one way Hermes enqueues a pgqueuer job: in the caller's transaction (outbox),
-- writing the queue row and its log row as pgqueuer's own enqueue query does. The
-- pgqueuer table trigger NOTIFYs workers at commit; a rolled-back caller leaves no job.
CREATE OR REPLACE FUNCTION private.enqueue_job(
  p_entrypoint text,
  p_payload jsonb,
  p_execute_after interval DEFAULT interval '0',
  p_priority int DEFAULT 0)
RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
  WITH job AS (
    INSERT INTO pgqueuer.pgqueuer (priority, entrypoint, payload, execute_after, status)
    VALUES (p_priority, p_entrypoint, convert_to(p_payload::text, 'UTF8'),
            now() + p_execute_after, 'queued')
    RETURNING id, entrypoint, priority
  ), logged AS (
    INSERT INTO pgqueuer.pgqueuer_log (job_id, status, entrypoint, priority)
    SELECT id, 'queued', entrypoint, priority FROM job
  )
  SELECT id FROM job
$$;
COMMENT ON FUNCTION private.enqueue_job(text, jsonb, interval, int) IS
  'Enqueues a pgqueuer job in the current transaction; the payload is JSON and must hold no secret.';
