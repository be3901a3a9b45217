-- private.audit: one row in app.audit_log per command.
BEGIN;
\ir ../../helpers.psql
SELECT plan(6);

SELECT gen_random_uuid() AS tenant_id, gen_random_uuid() AS key_id \gset
SELECT count(*) AS before FROM app.audit_log \gset
SELECT lives_ok(format($$SELECT private.audit(%L, %L, 'thing.do', 'target-1', '{"a": 1}')$$, :'tenant_id', :'key_id'),
  'audit() appends');
SELECT results_eq(
  format($$SELECT tenant_id, api_key_id, action, target_id, details, created_at FROM app.audit_log
            WHERE action = 'thing.do'$$),
  format($$VALUES (%L::uuid, %L::uuid, 'thing.do', 'target-1', '{"a": 1}'::jsonb, now())$$, :'tenant_id', :'key_id'),
  'the row holds who, what, on what, details and the transaction time');
SELECT private.audit(NULL, NULL, 'thing.default', NULL) IS NULL AS done \gset
SELECT is((SELECT details FROM app.audit_log WHERE action = 'thing.default'), '{}'::jsonb,
  'details default to {}');
SELECT private.audit(NULL, NULL, 'thing.null', NULL, NULL) IS NULL AS done \gset
SELECT is((SELECT details FROM app.audit_log WHERE action = 'thing.null'), '{}'::jsonb,
  'NULL details are stored as {}');
SELECT is((SELECT count(*) FROM app.audit_log) - :before, 3::bigint, 'one row per call');
SELECT ok((SELECT count(DISTINCT id) = count(*) FROM app.audit_log), 'ids are unique');

SELECT * FROM finish();
ROLLBACK;
