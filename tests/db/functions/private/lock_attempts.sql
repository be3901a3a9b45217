-- private.lock_attempts: a set of attempts locked FOR UPDATE (in id order) for the rest
-- of the transaction; returns how many exist and were locked. Repeated and unknown ids
-- are no error. (That two sessions wait for each other is shown by tests/test_races.py;
-- here a row lock is seen in the row's xmax: this transaction's id, lock-only.)
BEGIN;
\ir ../../helpers.psql
SELECT plan(10);

SELECT (pg_temp.new_tenant('Locks Co') -> 'tenant' ->> 'id') AS t \gset
SELECT pg_temp.new_message(:'t') AS m1 \gset
SELECT pg_temp.attempt_of(:'m1') AS a1, pg_temp.attempt_of(pg_temp.new_message(:'t')) AS a2,
       pg_temp.attempt_of(pg_temp.new_message(:'t')) AS a3, pg_temp.attempt_of(pg_temp.new_message(:'t')) AS a4 \gset
-- The attempts this transaction holds a row lock on.
CREATE FUNCTION pg_temp.locked() RETURNS SETOF uuid LANGUAGE sql AS $$
  SELECT id FROM app.message_attempts WHERE xmax::text = pg_current_xact_id()::text
$$;
SELECT is_empty('SELECT * FROM pg_temp.locked()', 'set-up: no attempt is locked');

SELECT pg_temp.counts() AS before \gset
SELECT is(private.lock_attempts(ARRAY[:'a2', :'a1']::uuid[]), 2::bigint, 'two attempts: two locked');
SELECT set_eq('SELECT * FROM pg_temp.locked()', format($$VALUES (%L::uuid), (%L::uuid)$$, :'a1', :'a2'),
  'exactly those two rows are locked by this transaction');
SELECT is(private.lock_attempts(ARRAY[:'a3', :'a3', :'a3']::uuid[]), 1::bigint, 'an id repeated counts once');
SELECT is(private.lock_attempts(ARRAY[private.uuid7(), gen_random_uuid(), :'m1', :'a4', NULL]::uuid[]), 1::bigint,
  'unknown, non-v7, message and NULL ids are skipped, without error');
SELECT set_eq('SELECT * FROM pg_temp.locked()', format($$VALUES (%L::uuid), (%L::uuid), (%L::uuid), (%L::uuid)$$,
                                                        :'a1', :'a2', :'a3', :'a4'),
  'all four are locked now');
SELECT is(private.lock_attempts('{}'::uuid[]), 0::bigint, 'no ids: none');
SELECT is(private.lock_attempts(NULL), 0::bigint, 'NULL: none');
SELECT is(pg_temp.counts(), :'before'::jsonb, 'locking writes no row');

SELECT ok((SELECT NOT prosecdef FROM pg_proc WHERE oid = 'private.lock_attempts(uuid[])'::regprocedure)
          AND NOT has_function_privilege('hermes_api', 'private.lock_attempts(uuid[])', 'EXECUTE')
          AND NOT has_function_privilege('hermes_worker', 'private.lock_attempts(uuid[])', 'EXECUTE'),
  'not SECURITY DEFINER, and no client role may call it');

SELECT * FROM finish();
ROLLBACK;
