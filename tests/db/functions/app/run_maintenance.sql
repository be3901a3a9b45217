-- app.run_maintenance: partitions ahead, idempotency keys older than 7 days pruned.
BEGIN;
\ir ../../helpers.psql
SELECT plan(7);

SELECT (pg_temp.new_tenant('Maintenance Co') -> 'tenant' ->> 'id') AS t \gset
INSERT INTO app.idempotency_keys (tenant_id, key, request_hash, created_at) VALUES
  (:'t', 'old', '\x00', now() - interval '8 days'),
  (:'t', 'just-expired', '\x00', now() - interval '7 days 1 second'),
  (:'t', 'recent', '\x00', now() - interval '6 days 23 hours');
SELECT app.submit_message(:'t', NULL, '{"to": "+14155550123", "body": "hi"}', 'today') IS NOT NULL AS s \gset

SELECT is(app.run_maintenance(), '{"partitions_created": [], "idempotency_keys_pruned": 2}'::jsonb,
  'prunes the two keys older than 7 days; the migrated partitions suffice');
SELECT set_eq($$SELECT key FROM app.idempotency_keys$$, ARRAY['recent', 'today'], 'recent keys are kept');
SELECT is(app.run_maintenance(), '{"partitions_created": [], "idempotency_keys_pruned": 0}'::jsonb,
  'a second run does nothing (idempotent)');
SELECT is(app.submit_message(:'t', NULL, '{"to": "+14155550123", "body": "other"}', 'old') ->> 'replayed', 'false',
  'a pruned key can be used again');

-- A month boundary later, the next month's partitions appear.
SELECT c.relname AS newest FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'app.messages'::regclass ORDER BY c.relname DESC LIMIT 1 \gset
SELECT format('DROP TABLE app.%I', :'newest') AS drop_sql \gset
:drop_sql;
SELECT is(app.run_maintenance() -> 'partitions_created', jsonb_build_array(:'newest'),
  'a missing partition ahead is created');
SELECT ok(to_regclass('app.' || :'newest') IS NOT NULL, 'and exists');
SELECT ok(has_function_privilege('hermes_worker', 'app.run_maintenance()', 'EXECUTE'), 'the workers may run it');

SELECT * FROM finish();
ROLLBACK;
