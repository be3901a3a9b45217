-- private.uuid7_time: the instant encoded in a UUIDv7 (the partition key of its rows).
BEGIN;
\ir ../../helpers.psql
SELECT plan(8);

SELECT is(private.uuid7_time('019b76da-a800-7bd2-bff7-0cacb4196124'),
  timestamptz '2026-01-01 00:00:00+00', 'a known UUIDv7 (0x019b76daa800 ms)');
SELECT is(private.uuid7_time('019b76da-a9e7-7000-8000-000000000000'),
  timestamptz '2026-01-01 00:00:00.487+00', 'milliseconds are kept exactly');
SELECT is(private.uuid7_time('00000000-0000-7000-8000-000000000000'),
  timestamptz '1970-01-01 00:00:00+00', 'all-zero time is the Unix epoch');
SELECT is(private.uuid7_time('00000000-0001-7000-8000-000000000000'),
  timestamptz '1970-01-01 00:00:00.001+00', 'one millisecond after the epoch');
SELECT is(private.uuid7_time('ffffffff-ffff-7fff-bfff-ffffffffffff'),
  timestamptz '10889-08-02 05:31:50.655+00', 'the largest 48-bit time');
SELECT is_empty($$
  SELECT t FROM generate_series(timestamptz '2025-12-31 23:59:59+00', timestamptz '2026-01-01 00:00:01+00',
                                interval '7 milliseconds') t
   WHERE private.uuid7_time(private.uuid7(t)) <> date_trunc('milliseconds', t)
$$, 'round trip across a year boundary (every 7 ms over 2 s)');
SELECT is(private.uuid7_time(NULL), NULL, 'NULL gives NULL');
SELECT volatility_is('private', 'uuid7_time', ARRAY['uuid'], 'immutable',
  'uuid7_time is IMMUTABLE (so it can prune partitions at plan time)');

SELECT * FROM finish();
ROLLBACK;
