-- app.get_message: one message of the tenant, by id.
BEGIN;
\ir ../../helpers.psql
SELECT plan(6);

SELECT (pg_temp.new_tenant('Get Co') -> 'tenant' ->> 'id') AS t \gset
SELECT (pg_temp.new_tenant('Other Co') -> 'tenant' ->> 'id') AS t_other \gset
SELECT pg_temp.new_message(:'t', 'find me') AS m \gset

SELECT is(app.get_message(:'t', :'m'), (SELECT private.message_json(x) FROM app.messages x WHERE id = :'m'),
  'the tenant gets its message as message_json');
SELECT is(app.get_message(:'t', :'m') ->> 'body', 'find me', 'with its body');
SELECT is(pg_temp.problem(format('SELECT app.get_message(%L, %L)', :'t_other', :'m')), 'HM404 message_not_found',
  'another tenant''s message: HM404 message_not_found (not 403: no existence leak)');
SELECT is(pg_temp.problem(format('SELECT app.get_message(%L, %L)', :'t', private.uuid7())), 'HM404 message_not_found',
  'an unknown id: HM404');
SELECT is(pg_temp.problem(format('SELECT app.get_message(%L, %L)', :'t', gen_random_uuid())), 'HM404 message_not_found',
  'a non-v7 id: HM404, no other error');
SELECT is(pg_temp.problem(format('SELECT app.get_message(%L, %L)', :'t', pg_temp.attempt_of(:'m'))), 'HM404 message_not_found',
  'an attempt id is not a message id');

SELECT * FROM finish();
ROLLBACK;
