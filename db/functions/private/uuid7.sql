-- UUIDv7 (RFC 9562) for a given instant: 48-bit Unix milliseconds, then random bits
-- from gen_random_uuid() (the server's strong random source). Hermes stamps every
-- row of a message with the message's created_at, so an id alone finds its partition.
-- No SET clause, so the planner inlines it into the set-based inserts that call it per
-- row (it only names pg_catalog functions, qualified by the callers' pinned path).
CREATE OR REPLACE FUNCTION private.uuid7(p_at timestamptz DEFAULT clock_timestamp())
RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$
  SELECT encode(
    set_bit(set_bit(
      overlay(uuid_send(gen_random_uuid())
              PLACING substring(int8send(floor(extract(epoch FROM p_at) * 1000)::bigint) FROM 3)
              FROM 1 FOR 6),
      52, 1), 53, 1),
    'hex')::uuid
$$;
COMMENT ON FUNCTION private.uuid7(timestamptz) IS 'A UUIDv7 whose timestamp is p_at, truncated to the millisecond.';
