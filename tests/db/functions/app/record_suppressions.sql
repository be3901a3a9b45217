-- app.record_suppressions: POST /v1/suppressions (and /remove) for the token's tenant,
-- with compliance:write.
BEGIN;
\ir ../../helpers.psql
SELECT plan(5);

SELECT pg_temp.new_tenant('Lists API Co') AS r \gset
SELECT (:'r'::jsonb) -> 'tenant' ->> 'id' AS t, (:'r'::jsonb) -> 'api_key' ->> 'token' AS token \gset
SELECT pg_temp.new_key(:'t', 'reader', ARRAY['read']) ->> 'token' AS reader_token \gset

SELECT is(app.record_suppressions(:'token', 'add', 'do_not_contact', '["+14155550100"]') ->> 'recorded', '1',
  'adds for the token''s tenant');
SELECT results_eq('SELECT tenant_id, address, list FROM app.suppressions',
  format($$VALUES (%L::uuid, '+14155550100', 'do_not_contact')$$, :'t'), 'the tenant''s list');
SELECT is(app.record_suppressions(:'token', 'remove', 'do_not_contact', '["+14155550100"]') ->> 'recorded', '1', 'removes');
SELECT is((SELECT count(*)::int FROM app.suppressions), 0, 'the list is empty again');
SELECT is(pg_temp.problem(format($$SELECT app.record_suppressions(%L, 'add', 'do_not_contact', '[]')$$, :'reader_token')),
  'HM403 insufficient_scope', 'a key without compliance:write: HM403');

SELECT * FROM finish();
ROLLBACK;
