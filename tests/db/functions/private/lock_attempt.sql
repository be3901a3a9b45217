-- private.lock_attempt: one attempt by id, locked FOR UPDATE; a NULL row if none.
BEGIN;
\ir ../../helpers.psql
SELECT plan(4);

SELECT (pg_temp.new_tenant('Lock Co') -> 'tenant' ->> 'id') AS t \gset
SELECT pg_temp.new_message(:'t') AS m \gset
SELECT pg_temp.attempt_of(:'m') AS a \gset

SELECT is((private.lock_attempt(:'a')).id, :'a'::uuid, 'returns the attempt');
SELECT is((private.lock_attempt(:'a')).message_id, :'m'::uuid, 'with all its columns');
-- That the row is locked is shown from a second session: tests/test_races.py.
SELECT is((private.lock_attempt(private.uuid7())).id, NULL, 'an unknown id: a NULL row');
SELECT is((private.lock_attempt(gen_random_uuid())).id, NULL, 'a non-v7 id: a NULL row, no error');

SELECT * FROM finish();
ROLLBACK;
