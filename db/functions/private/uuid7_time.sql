-- The instant (millisecond precision) encoded in a UUIDv7, exactly:
-- private.uuid7_time(private.uuid7(t)) = date_trunc('milliseconds', t).
-- One expression of IMMUTABLE parts only, not STRICT, no SET and no FROM, so the
-- planner inlines it: a constant id folds to a constant (plan-time partition pruning)
-- and a hot statement pays no function call per row. (An earlier body added an
-- interval to a timestamptz -- a STABLE operator, because of time zones -- and
-- PostgreSQL never inlines an IMMUTABLE function whose body is not: every use was a
-- SQL function call.) timestamp + interval and AT TIME ZONE 'UTC' are IMMUTABLE.
CREATE OR REPLACE FUNCTION private.uuid7_time(p_id uuid)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT (timestamp '1970-01-01'
          + (('x' || substr(p_id::text, 1, 8) || substr(p_id::text, 10, 4))::bit(48)::bigint / 1000) * interval '1 second'
          + (('x' || substr(p_id::text, 1, 8) || substr(p_id::text, 10, 4))::bit(48)::bigint % 1000) * interval '1 millisecond')
         AT TIME ZONE 'UTC'
$$;
COMMENT ON FUNCTION private.uuid7_time(uuid) IS 'The timestamp of a UUIDv7 (the partition key of the rows it names).';
