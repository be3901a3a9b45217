-- The provider accepted messages (e.g. Twilio answered 201 with a SID and a status):
-- the worker records a whole batch of hand-offs in one call.
-- p_handoffs = [{"attempt_id", "provider_message_id", "provider_status"}, ...].
-- Always recorded, whatever claim the caller held: the provider has the message. If
-- an attempt already holds another provider id, this is a second hand-off (I3
-- broken) and is recorded as such (a 'handed_off' event with error_code
-- duplicate_handoff), not hidden. The status the provider answered goes into the
-- receipt inbox like any receipt (source 'handoff'; it may already be terminal when
-- found by reconciliation), so every status reaches the message by one path.
-- Returns {recorded, duplicates, already_recorded}.
CREATE OR REPLACE FUNCTION app.record_handoffs(p_handoffs jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_recorded   bigint;
  v_duplicates bigint;
  v_total      bigint;
  v_ids        uuid[];
BEGIN
  IF jsonb_typeof(p_handoffs) IS DISTINCT FROM 'array' THEN
    PERFORM private.raise_problem(422, 'invalid_handoffs', 'Hand-offs are a JSON array.');
  END IF;
  IF EXISTS (SELECT 1 FROM jsonb_array_elements(p_handoffs) h
              WHERE coalesce(h ->> 'provider_message_id', '') = '' OR h ->> 'attempt_id' IS NULL) THEN
    PERFORM private.raise_problem(422, 'missing_provider_message_id', 'A hand-off needs the attempt and provider id.');
  END IF;
  v_total := jsonb_array_length(p_handoffs);
  -- Batch rows reach attempts through LATERAL lookups by primary key, each with LIMIT 1
  -- so that the planner cannot pull it up into a join: a nested loop of index probes
  -- whatever it guesses of a JSON array's size (a hash join over a sequential scan of
  -- the partition was its choice for partitions of a few thousand rows).
  v_ids := ARRAY(SELECT DISTINCT (h ->> 'attempt_id')::uuid FROM jsonb_array_elements(p_handoffs) h);
  IF private.lock_attempts(v_ids) < cardinality(v_ids) THEN
    PERFORM private.raise_problem(404, 'attempt_not_found', 'No such attempt.');
  END IF;

  v_recorded := private.record_handoffs_locked(p_handoffs, 'worker');
  -- A second, different provider id for an attempt (already recorded before, or
  -- earlier in this batch): recorded as such, never applied.
  INSERT INTO app.message_events (message_created_at, message_id, tenant_id, attempt_id, event_type,
                                  provider_status, error_code, details)
  SELECT a.message_created_at, a.message_id, a.tenant_id, a.id, 'handed_off', h.provider_status,
         'duplicate_handoff',
         jsonb_build_object('provider_message_id', h.provider_message_id,
                            'first_provider_message_id', a.provider_message_id)
    FROM jsonb_to_recordset(p_handoffs) h(attempt_id uuid, provider_message_id text, provider_status text)
   CROSS JOIN LATERAL (SELECT * FROM app.message_attempts x
                        WHERE x.id = h.attempt_id AND x.message_created_at = private.uuid7_time(h.attempt_id)
                         LIMIT 1) a
   WHERE a.provider_message_id IS NOT NULL AND a.provider_message_id <> h.provider_message_id;
  GET DIAGNOSTICS v_duplicates = ROW_COUNT;

  PERFORM private.insert_receipts('handoff',
    (SELECT coalesce(jsonb_agg(jsonb_build_object(
              'attempt_id', h.attempt_id, 'provider', a.provider,
              'provider_message_id', h.provider_message_id,
              'provider_status', coalesce(nullif(h.provider_status, ''), 'queued'))), '[]')
       FROM jsonb_to_recordset(p_handoffs) h(attempt_id uuid, provider_message_id text, provider_status text)
      CROSS JOIN LATERAL (SELECT * FROM app.message_attempts x
                           WHERE x.id = h.attempt_id AND x.message_created_at = private.uuid7_time(h.attempt_id)
                         LIMIT 1) a
      WHERE a.provider_message_id = h.provider_message_id));
  RETURN jsonb_build_object('recorded', v_recorded, 'duplicates', v_duplicates,
                            'already_recorded', v_total - v_recorded - v_duplicates);
END
$$;
COMMENT ON FUNCTION app.record_handoffs(jsonb) IS
  'Records a batch of provider hand-offs (ids and answered statuses); idempotent; second ids flagged.';
GRANT EXECUTE ON FUNCTION app.record_handoffs(jsonb) TO hermes_worker;

-- One hand-off (operators, reconciliation): app.record_handoffs with one element.
CREATE OR REPLACE FUNCTION app.record_handoff(
  p_attempt_id uuid, p_provider_message_id text, p_provider_status text DEFAULT 'queued')
RETURNS jsonb
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT app.record_handoffs(jsonb_build_array(jsonb_build_object(
    'attempt_id', p_attempt_id, 'provider_message_id', p_provider_message_id,
    'provider_status', p_provider_status)))
$$;
COMMENT ON FUNCTION app.record_handoff(uuid, text, text) IS
  'Records that the provider accepted an attempt (its message id and status); idempotent.';
GRANT EXECUTE ON FUNCTION app.record_handoff(uuid, text, text) TO hermes_worker;
