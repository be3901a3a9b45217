-- private.uuid7_times: the distinct partition keys of a set of UUIDv7 ids.
BEGIN;
\ir ../../helpers.psql
SELECT plan(4);

SELECT is(private.uuid7_times(ARRAY[]::uuid[]), ARRAY[]::timestamptz[], 'no ids, no times');
SELECT is(private.uuid7_times(NULL), ARRAY[]::timestamptz[], 'NULL is no ids');
SELECT is(
  (SELECT array_agg(t ORDER BY t) FROM unnest(private.uuid7_times(ARRAY[
     '019b76da-a800-7bd2-bff7-0cacb4196124', '019b76da-a800-7000-8000-000000000001',
     '019b76da-a9e7-7000-8000-000000000000']::uuid[])) t),
  ARRAY[timestamptz '2026-01-01 00:00:00+00', timestamptz '2026-01-01 00:00:00.487+00'],
  'two ids of one instant give one time; each distinct instant once');
-- What it is for: a PK index condition on a partitioned table, not a scan.
SELECT ok(
  (SELECT count(*) FROM app.message_attempts a
    WHERE a.id = ANY(ARRAY['019b76da-a800-7bd2-bff7-0cacb4196124']::uuid[])
      AND a.message_created_at = ANY(private.uuid7_times(ARRAY['019b76da-a800-7bd2-bff7-0cacb4196124']::uuid[]))) = 0,
  'usable as a filter on the partition key');

SELECT * FROM finish();
ROLLBACK;
