-- app.get_message: one message of the key's tenant, by id (read scope).
BEGIN;
\ir ../../helpers.psql
SELECT plan(9);

SELECT r -> 'tenant' ->> 'id' AS t, r -> 'api_key' ->> 'token' AS tok FROM pg_temp.new_tenant('Get Co') r \gset
SELECT r -> 'tenant' ->> 'id' AS t_other, r -> 'api_key' ->> 'token' AS tok_other
  FROM pg_temp.new_tenant('Other Co') r \gset
SELECT pg_temp.new_key(:'t', 'sender', ARRAY['messages:write']) ->> 'token' AS tok_sender \gset
SELECT pg_temp.new_message(:'t', 'find me') AS m \gset

SELECT is(app.get_message(:'tok', :'m'), (SELECT private.message_json(x) FROM app.messages x WHERE id = :'m'),
  'the tenant gets its message as message_json');
SELECT is(app.get_message(:'tok', :'m') ->> 'body', 'find me', 'with its body');
SELECT is(pg_temp.problem(format('SELECT app.get_message(%L, %L)', :'tok_other', :'m')), 'HM404 message_not_found',
  'another tenant''s key: HM404 message_not_found (not 403: no existence leak)');
SELECT is(pg_temp.problem(format('SELECT app.get_message(%L, %L)', :'tok', private.uuid7())), 'HM404 message_not_found',
  'an unknown id: HM404');
SELECT is(pg_temp.problem(format('SELECT app.get_message(%L, %L)', :'tok', gen_random_uuid())), 'HM404 message_not_found',
  'a non-v7 id: HM404, no other error');
SELECT is(pg_temp.problem(format('SELECT app.get_message(%L, %L)', :'tok', pg_temp.attempt_of(:'m'))), 'HM404 message_not_found',
  'an attempt id is not a message id');
SELECT is(pg_temp.problem(format('SELECT app.get_message(%L, %L)', :'tok_sender', :'m')), 'HM403 insufficient_scope',
  'a key without the read scope: HM403 insufficient_scope');
SELECT is(pg_temp.problem(format('SELECT app.get_message(%L, %L)', 'nope', :'m')), 'HM401 invalid_api_key',
  'an unknown token: HM401');
UPDATE app.tenants SET status = 'suspended' WHERE id = :'t';
SELECT is(pg_temp.problem(format('SELECT app.get_message(%L, %L)', :'tok', :'m')), 'HM403 tenant_suspended',
  'a suspended tenant''s key: HM403 tenant_suspended');

SELECT * FROM finish();
ROLLBACK;
