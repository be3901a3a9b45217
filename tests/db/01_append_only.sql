-- app.message_events and app.audit_log are ledgers: rows are only ever added. The
-- trigger private.tg_append_only refuses UPDATE, DELETE and TRUNCATE with SQLSTATE
-- HM405 even for the owner / a superuser (this file runs as the superuser).
BEGIN;
\ir helpers.psql
SELECT plan(26);

-- Partitions made later (by ensure_partitions) must carry the row trigger too.
SELECT count(*) AS partitions_created FROM private.ensure_partitions(6) \gset
SELECT (pg_temp.new_tenant('Ledger Ltd') -> 'tenant' ->> 'id') AS tenant_id \gset
SELECT pg_temp.new_message(:'tenant_id') AS message_id \gset
CREATE TEMP TABLE before_events AS SELECT * FROM app.message_events;
CREATE TEMP TABLE before_audit AS SELECT * FROM app.audit_log;

SELECT isnt_empty('SELECT 1 FROM app.message_events', 'the ledger has an event to tamper with');
SELECT isnt_empty('SELECT 1 FROM app.audit_log', 'the audit log has rows to tamper with');

-- message_events -------------------------------------------------------------------
SELECT throws_ok($$UPDATE app.message_events SET status = 'delivered'$$, 'HM405',
  NULL, 'UPDATE on message_events: HM405 (raised by the partition''s row trigger)');
SELECT throws_ok($$DELETE FROM app.message_events$$, 'HM405',
  NULL, 'DELETE on message_events: HM405 (raised by the partition''s row trigger)');
SELECT throws_ok($$TRUNCATE app.message_events$$, 'HM405',
  'app.message_events is append-only: TRUNCATE is not allowed', 'TRUNCATE on message_events: HM405');
SELECT is(pg_temp.problem($$DELETE FROM app.message_events WHERE message_id = '$$ || :'message_id' || $$'$$),
  'HM405 append_only', 'the refusal carries DETAIL append_only');
SELECT is(pg_temp.problem(format('UPDATE %s SET details = %L',
            (SELECT tableoid::regclass FROM app.message_events LIMIT 1), '{"x": 1}')),
  'HM405 append_only', 'UPDATE straight on a message_events partition: HM405 too');
SELECT lives_ok(format(
  $$INSERT INTO app.message_events (message_created_at, message_id, tenant_id, event_type, status)
    VALUES (%L, %L, %L, 'provider_status', 'queued')$$,
  private.uuid7_time(:'message_id'), :'message_id', :'tenant_id'),
  'INSERT into message_events works');
SELECT is((SELECT count(*)::int FROM app.message_events), (SELECT count(*)::int + 1 FROM before_events),
  'message_events grew by the inserted row only');
SELECT set_eq('SELECT * FROM before_events',
  $$SELECT * FROM app.message_events WHERE event_type <> 'provider_status'$$,
  'the existing events are unchanged');

-- audit_log ---------------------------------------------------------------------------
SELECT throws_ok($$UPDATE app.audit_log SET action = 'nothing'$$, 'HM405',
  NULL, 'UPDATE on audit_log: HM405 (raised by the partition''s row trigger)');
SELECT throws_ok($$DELETE FROM app.audit_log$$, 'HM405',
  NULL, 'DELETE on audit_log: HM405 (raised by the partition''s row trigger)');
SELECT throws_ok($$TRUNCATE app.audit_log$$, 'HM405',
  'app.audit_log is append-only: TRUNCATE is not allowed', 'TRUNCATE on audit_log: HM405');
SELECT throws_ok($$TRUNCATE app.audit_log, app.message_events$$, 'HM405', NULL,
  'TRUNCATE of both ledgers at once: HM405');
SELECT is(pg_temp.problem(format('DELETE FROM %s',
            (SELECT tableoid::regclass FROM app.audit_log LIMIT 1))),
  'HM405 append_only', 'DELETE straight on an audit_log partition: HM405 too');
SELECT lives_ok($$INSERT INTO app.audit_log (action, target_id) VALUES ('test.insert', 'x')$$,
  'INSERT into audit_log works');
SELECT is((SELECT count(*)::int FROM app.audit_log), (SELECT count(*)::int + 1 FROM before_audit),
  'audit_log grew by the inserted row only');
SELECT set_eq('SELECT * FROM before_audit', $$SELECT * FROM app.audit_log WHERE action <> 'test.insert'$$,
  'the existing audit rows are unchanged');

-- Every partition, present and future, refuses row changes ----------------------------
SELECT is_empty($$
  SELECT c.oid::regclass FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
   WHERE i.inhparent IN ('app.message_events'::regclass, 'app.audit_log'::regclass)
     AND NOT EXISTS (SELECT 1 FROM pg_trigger t
                      WHERE t.tgrelid = c.oid AND t.tgfoid = 'private.tg_append_only()'::regprocedure
                        AND t.tgenabled <> 'D'
                        AND (t.tgtype & 8) <> 0 AND (t.tgtype & 16) <> 0)  -- DELETE and UPDATE
$$, 'every ledger partition has an enabled UPDATE/DELETE append-only trigger');
SELECT is_empty($$
  SELECT t.tgrelid::regclass, t.tgname FROM pg_trigger t
   WHERE t.tgfoid = 'private.tg_append_only()'::regprocedure AND t.tgenabled = 'D'
$$, 'no append-only trigger is disabled');

-- Clients could not even try: no UPDATE, DELETE or TRUNCATE privilege -------------------
SELECT ok(NOT has_table_privilege('hermes_api', 'app.message_events', 'UPDATE, DELETE, TRUNCATE'),
  'hermes_api has no UPDATE/DELETE/TRUNCATE on message_events');
SELECT ok(NOT has_table_privilege('hermes_worker', 'app.message_events', 'UPDATE, DELETE, TRUNCATE'),
  'hermes_worker has no UPDATE/DELETE/TRUNCATE on message_events');
SELECT ok(NOT has_table_privilege('hermes_api', 'app.audit_log', 'UPDATE, DELETE, TRUNCATE'),
  'hermes_api has no UPDATE/DELETE/TRUNCATE on audit_log');
SELECT ok(NOT has_table_privilege('hermes_worker', 'app.audit_log', 'UPDATE, DELETE, TRUNCATE'),
  'hermes_worker has no UPDATE/DELETE/TRUNCATE on audit_log');

SELECT tableoid::regclass AS events_part FROM app.message_events LIMIT 1 \gset
SELECT tableoid::regclass AS audit_part FROM app.audit_log LIMIT 1 \gset
SELECT throws_ok('TRUNCATE ' || :'events_part', 'HM405', NULL,
  'TRUNCATE straight on a message_events partition: HM405');
SELECT throws_ok('TRUNCATE ' || :'audit_part', 'HM405', NULL,
  'TRUNCATE straight on an audit_log partition: HM405');

SELECT * FROM finish();
ROLLBACK;
