-- The instant (millisecond precision) encoded in a UUIDv7. Integer arithmetic only,
-- so private.uuid7_time(private.uuid7(t)) = date_trunc('milliseconds', t) exactly.
CREATE OR REPLACE FUNCTION private.uuid7_time(p_id uuid)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
  SELECT to_timestamp(ms / 1000) + (ms % 1000) * interval '1 millisecond'
  FROM (SELECT ('x' || substr(replace(p_id::text, '-', ''), 1, 12))::bit(48)::bigint AS ms) t
$$;
COMMENT ON FUNCTION private.uuid7_time(uuid) IS 'The timestamp of a UUIDv7 (the partition key of the rows it names).';
