-- The calling mark: a worker's second call for a batch, just before it calls the
-- providers. For each (attempt, claim_no) still claimed under that claim it records
-- calling_claim_no (the call's outcome is open from now on) and restarts the claim lease
-- (the lease covers the call: app.check_worker_settings keeps the provider timeout
-- inside it), and sets reconcile_after: a call that ends without an answer (its worker
-- dies) is not reconciled before the provider lists its messages (reconcile_delay).
-- Returns the attempt ids that may be called; the others were claimed again
-- by another worker after this claim's lease ran out (that worker found no mark and
-- sent them itself) or finished meanwhile: calling them would send twice.
-- A claimed attempt without a mark after its lease is one whose worker died before this
-- call: app.claim_attempts releases it and sends it, instead of reconciling it.
CREATE OR REPLACE FUNCTION app.begin_calls(p_attempt_ids uuid[], p_claim_nos int[])
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_calling jsonb;
BEGIN
  IF cardinality(p_attempt_ids) IS DISTINCT FROM cardinality(p_claim_nos) THEN
    PERFORM private.raise_problem(422, 'begin_calls_mismatch',
      format('%s attempt ids but %s claim numbers.', cardinality(p_attempt_ids), cardinality(p_claim_nos)),
      'Pass one claim_no per attempt id, in the same order.');
  END IF;
  PERFORM private.lock_attempts(p_attempt_ids);
  WITH wanted AS (
    SELECT u.id, u.claim_no, private.uuid7_time(u.id) AS created
      FROM unnest(p_attempt_ids, p_claim_nos) u(id, claim_no)
  ), marked AS (
    UPDATE app.message_attempts a
       SET calling_claim_no = w.claim_no, last_claimed_at = now(), updated_at = now(),
           -- should this call end without an answer (its worker dies), it is not
           -- reconciled before the provider can list what it made (reconcile_delay)
           reconcile_after = now() + private.reconcile_delay()
      FROM wanted w
     WHERE a.id = w.id AND a.message_created_at = w.created
       AND a.message_created_at = ANY(ARRAY(SELECT DISTINCT private.uuid7_time(i) FROM unnest(p_attempt_ids) i))
       AND a.status = 'claimed' AND a.claim_count = w.claim_no
    RETURNING a.id
  )
  SELECT coalesce(jsonb_agg(m.id ORDER BY m.id), '[]') INTO v_calling FROM marked m;
  RETURN v_calling;
END
$$;
COMMENT ON FUNCTION app.begin_calls(uuid[], int[]) IS
  'Marks claimed attempts as being called (under their claim): returns the ids that may be called.';
GRANT EXECUTE ON FUNCTION app.begin_calls(uuid[], int[]) TO hermes_worker;
