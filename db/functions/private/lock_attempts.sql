-- Locks a set of attempts for the rest of the transaction, in id order, so that two
-- batches touching the same attempts (a batched hand-off and the receipt applier, two
-- workers' claims) wait for each other instead of deadlocking. Every function that
-- changes attempts in bulk starts here; like private.lock_attempt, attempt first,
-- message second. Returns how many it locked.
CREATE OR REPLACE FUNCTION private.lock_attempts(p_attempt_ids uuid[])
RETURNS bigint
LANGUAGE plpgsql VOLATILE  -- not sql: PostgreSQL < 18 plans a SQL function's body on every call
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_n bigint;
BEGIN
  WITH locked AS (
    SELECT a.id
      FROM app.message_attempts a
     WHERE a.id = ANY(p_attempt_ids)
       AND a.message_created_at = ANY(ARRAY(SELECT DISTINCT private.uuid7_time(i) FROM unnest(p_attempt_ids) i))
     ORDER BY a.id
       FOR UPDATE OF a
  )
  SELECT count(*) INTO v_n FROM locked;
  RETURN v_n;
END
$$;
COMMENT ON FUNCTION private.lock_attempts(uuid[]) IS
  'SELECT ... FOR UPDATE of a set of attempts, in id order (no deadlocks between batches).';
