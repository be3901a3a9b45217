-- The distinct partition keys (private.uuid7_time) of a set of ids. Set-based
-- statements filter the partitioned tables with "id = ANY(ids) AND created_at =
-- ANY(private.uuid7_times(ids))": an index condition on the primary key of each
-- partition (and runtime partition pruning), whatever the planner guesses of the
-- batch, instead of a join that can turn into a scan of the whole table.
CREATE OR REPLACE FUNCTION private.uuid7_times(p_ids uuid[])
RETURNS timestamptz[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT ARRAY(SELECT DISTINCT private.uuid7_time(i) FROM unnest(p_ids) i)
$$;
COMMENT ON FUNCTION private.uuid7_times(uuid[]) IS 'The distinct UUIDv7 timestamps of a set of ids (partition keys).';
