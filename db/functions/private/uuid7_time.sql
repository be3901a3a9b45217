-- The instant (millisecond precision) encoded in a UUIDv7. Integer arithmetic only,
-- so private.uuid7_time(private.uuid7(t)) = date_trunc('milliseconds', t) exactly.
-- One expression, not STRICT, no SET and no FROM: the planner inlines it, so a
-- constant id folds to a constant (plan-time partition pruning) and a hot statement
-- pays no function call per row.
CREATE OR REPLACE FUNCTION private.uuid7_time(p_id uuid)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT to_timestamp((('x' || substr(p_id::text, 1, 8) || substr(p_id::text, 10, 4))::bit(48)::bigint / 1000)::float8)
         + (('x' || substr(p_id::text, 1, 8) || substr(p_id::text, 10, 4))::bit(48)::bigint % 1000) * interval '1 millisecond'
$$;
COMMENT ON FUNCTION private.uuid7_time(uuid) IS 'The timestamp of a UUIDv7 (the partition key of the rows it names).';
