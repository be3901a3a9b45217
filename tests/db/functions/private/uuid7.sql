-- private.uuid7: RFC 9562 UUIDv7 stamped with a given instant (millisecond precision).
BEGIN;
\ir ../../helpers.psql
SELECT plan(14);

CREATE TEMP TABLE many AS
  SELECT n, private.uuid7(timestamptz '2026-11-23 10:00:00+00' + n * interval '1 millisecond') AS id
    FROM generate_series(1, 2000) n;

SELECT is_empty($$SELECT id FROM many WHERE substr(id::text, 15, 1) <> '7'$$,
  'the version nibble is 7 (2000 ids)');
SELECT is_empty($$SELECT id FROM many WHERE (get_byte(uuid_send(id), 6) >> 4) <> 7$$,
  'the version nibble is 7, checked on the bytes');
SELECT is_empty($$SELECT id FROM many WHERE (get_byte(uuid_send(id), 8) >> 6) <> 2$$,
  'the variant bits are 10 (2000 ids)');
SELECT is(private.uuid7_time(private.uuid7(t)), date_trunc('milliseconds', t),
          format('uuid7_time(uuid7(%s)) = date_trunc(''milliseconds'', t)', t))
  FROM unnest(ARRAY[
    timestamptz '1970-01-01 00:00:00.001+00',
    timestamptz '2000-02-29 23:59:59.999999+00',
    timestamptz '2026-11-23 11:12:13.456789+00',
    timestamptz '2026-12-31 23:59:59.9995+00',
    timestamptz '2038-01-19 03:14:08.0005+00',
    timestamptz '2026-03-29 02:30:00.123+02']) t;
SELECT is(substr(replace(private.uuid7('2026-01-01 00:00:00+00')::text, '-', ''), 1, 12),
  lpad(to_hex(1767225600000), 12, '0'), 'the first 48 bits are the Unix time in milliseconds');
SELECT is(array_agg(n ORDER BY id), array_agg(n ORDER BY n),
  'ids generated for increasing instants sort in time order')
  FROM many;
SELECT ok(private.uuid7(t) < private.uuid7(t + interval '1 millisecond'),
  'an id of a later millisecond sorts after one of an earlier millisecond')
  FROM (SELECT timestamptz '2026-11-23 10:00:00.999+00' AS t) s;
SELECT is((SELECT count(DISTINCT private.uuid7(timestamptz '2026-11-23 10:00:00+00'))::int
             FROM generate_series(1, 5000)),
  5000, 'ids of the same instant are all distinct (random bits)');
SELECT ok(private.uuid7_time(private.uuid7()) BETWEEN date_trunc('milliseconds', clock_timestamp()) - interval '1 second'
                                                  AND clock_timestamp(),
  'without an argument the id is stamped with the clock');

SELECT * FROM finish();
ROLLBACK;
