-- private.ensure_partitions: monthly partitions, last month .. N months ahead; idempotent.
-- (Runs with TimeZone UTC, set by helpers.psql.)
BEGIN;
\ir ../../helpers.psql
SELECT plan(17);

CREATE FUNCTION pg_temp.month(p_offset int) RETURNS timestamptz LANGUAGE sql AS $$
  SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => p_offset)) AT TIME ZONE 'UTC'
$$;
CREATE FUNCTION pg_temp.expected(p_from int, p_to int) RETURNS SETOF text LANGUAGE sql AS $$
  SELECT t || '_p' || to_char(pg_temp.month(i) AT TIME ZONE 'UTC', 'YYYY_MM')
    FROM unnest(ARRAY['audit_log', 'consent_events', 'inbound_messages', 'message_attempts', 'message_events', 'messages', 'receipts', 'suppression_events']) t,
         generate_series(p_from, p_to) i
$$;

-- Partitions (of any of the eight tables) whose bounds are not exactly the UTC month in their name.
CREATE FUNCTION pg_temp.off_month_partitions() RETURNS SETOF text LANGUAGE sql AS $$
  SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
   WHERE i.inhparent IN ('app.audit_log'::regclass, 'app.message_attempts'::regclass,
                         'app.message_events'::regclass, 'app.messages'::regclass,
                         'app.receipts'::regclass, 'app.consent_events'::regclass,
                         'app.suppression_events'::regclass, 'app.inbound_messages'::regclass)
     AND pg_get_expr(c.relpartbound, c.oid) IS DISTINCT FROM
         format('FOR VALUES FROM (%L) TO (%L)',
                to_timestamp(substring(c.relname FROM '_p([0-9]{4}_[0-9]{2})$') || '_01', 'YYYY_MM_DD')::timestamp
                  AT TIME ZONE 'UTC',
                (to_timestamp(substring(c.relname FROM '_p([0-9]{4}_[0-9]{2})$') || '_01', 'YYYY_MM_DD')::timestamp
                  + interval '1 month') AT TIME ZONE 'UTC')
$$;

SELECT is_empty('SELECT * FROM private.ensure_partitions(3)',
  'the migrated database already has last month .. +3: nothing to create');
SELECT is_empty('SELECT * FROM private.ensure_partitions(0)', 'nor for 0 months ahead');
SELECT set_eq('SELECT * FROM private.ensure_partitions(5)', 'SELECT * FROM pg_temp.expected(4, 5)',
  'with 5 months ahead it creates months +4 and +5 of the eight tables, and returns their names');
SELECT is_empty('SELECT * FROM private.ensure_partitions(5)', 'a second run creates nothing (idempotent)');
SELECT is_empty('SELECT * FROM private.ensure_partitions()', 'the default (3) creates nothing either');
SELECT set_eq($$
  SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
   WHERE i.inhparent IN ('app.audit_log'::regclass, 'app.message_attempts'::regclass,
                         'app.message_events'::regclass, 'app.messages'::regclass,
                         'app.receipts'::regclass, 'app.consent_events'::regclass,
                         'app.suppression_events'::regclass, 'app.inbound_messages'::regclass)
$$, 'SELECT * FROM pg_temp.expected(-1, 5)',
  'each partitioned table has exactly the months -1 .. +5');
SELECT is_empty('SELECT * FROM pg_temp.off_month_partitions()', 'each partition spans its UTC calendar month exactly');
SELECT lives_ok(format($$INSERT INTO app.messages (id, created_at, tenant_id, to_address, from_address, body)
  VALUES (%L, %L, gen_random_uuid(), '+14155550123', '+15005550006', 'x')$$,
  private.uuid7(pg_temp.month(6) - interval '1 microsecond'), pg_temp.month(6) - interval '1 microsecond'),
  'a row at the very end of month +5 has a partition');
SELECT throws_ok(format($$INSERT INTO app.messages (id, created_at, tenant_id, to_address, from_address, body)
  VALUES (%L, %L, gen_random_uuid(), '+14155550123', '+15005550006', 'x')$$,
  private.uuid7(pg_temp.month(6)), pg_temp.month(6)),
  '23514', NULL, 'a row of month +6 has none yet');
SELECT is(pg_temp.problem('SELECT private.ensure_partitions(-1)'), 'HM422 invalid_months_ahead',
  '-1 months ahead: HM422 invalid_months_ahead');
SELECT is(pg_temp.problem('SELECT private.ensure_partitions(37)'), 'HM422 invalid_months_ahead',
  '37 months ahead: HM422 invalid_months_ahead');
SELECT is((SELECT count(*)::int FROM private.ensure_partitions(36)), 8 * 31,
  'up to 36 months ahead is allowed (31 new months of each of the eight tables)');
SELECT is_empty($$
  SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = 'app' AND c.relispartition AND c.relkind = 'r' AND c.relacl IS NOT NULL
$$, 'new partitions get no grants');

-- The caller's TimeZone does not matter: bounds stay UTC months (found broken once:
-- America/New_York made a 28-day March, Europe/Berlin an overlap error).
SET LOCAL TimeZone = 'America/New_York';
SELECT lives_ok('SELECT private.ensure_partitions(9)', 'runs under America/New_York');
SET LOCAL TimeZone = 'Europe/Berlin';
SELECT lives_ok('SELECT private.ensure_partitions(10)', 'and under Europe/Berlin');
SET LOCAL TimeZone = 'UTC';
SELECT is_empty('SELECT * FROM pg_temp.off_month_partitions()', 'partitions made under other time zones still span UTC months');
-- Statement triggers are not inherited: the TRUNCATE guard is copied to each partition.
SELECT is_empty($$
  SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
   WHERE i.inhparent IN ('app.message_events'::regclass, 'app.audit_log'::regclass, 'app.receipts'::regclass)
     AND NOT EXISTS (SELECT 1 FROM pg_trigger t
                      WHERE t.tgrelid = c.oid AND t.tgname = '_011_append_only_truncate')
$$, 'every ledger partition (events, audit log, receipt inbox), new ones included, has the TRUNCATE guard');

SELECT * FROM finish();
ROLLBACK;
