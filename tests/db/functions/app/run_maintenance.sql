-- app.run_maintenance: partitions ahead, idempotency keys older than 7 days pruned, and
-- the sweep: open attempts (pending, claimed) untouched for requeue_after (set to 10
-- minutes here; 2 minutes by default, never less than the claim lease) that have no
-- live send_sms job get a new one, with a 'requeued' event.
BEGIN;
\ir ../../helpers.psql
SELECT plan(48);

SELECT is((SELECT value FROM private.settings WHERE key = 'requeue_after'), '2 minutes',
  'requeue_after is 2 minutes by default');
UPDATE private.settings SET value = '10 minutes' WHERE key = 'requeue_after';

SELECT (pg_temp.new_tenant('Maintenance Co') -> 'tenant' ->> 'id') AS t \gset
INSERT INTO app.idempotency_keys (tenant_id, key, request_hash, created_at) VALUES
  (:'t', 'old', '\x00', now() - interval '8 days'),
  (:'t', 'just-expired', '\x00', now() - interval '7 days 1 second'),
  (:'t', 'recent', '\x00', now() - interval '6 days 23 hours');
SELECT private.submit_message(:'t', NULL, '{"to": "+14155550123", "body": "hi"}', 'today') IS NOT NULL AS s \gset

SELECT is(app.run_maintenance(),
  '{"partitions_created": [], "idempotency_keys_pruned": 2, "attempts_requeued": 0, "attempts_given_up": 0, "timers_rearmed": 0, "attempts_timed_out": 0, "imports_requeued": 0}'::jsonb,
  'prunes the two keys older than 7 days; the migrated partitions suffice; nothing to requeue');
SELECT set_eq($$SELECT key FROM app.idempotency_keys$$, ARRAY['recent', 'today'], 'recent keys are kept');
SELECT is(app.run_maintenance(),
  '{"partitions_created": [], "idempotency_keys_pruned": 0, "attempts_requeued": 0, "attempts_given_up": 0, "timers_rearmed": 0, "attempts_timed_out": 0, "imports_requeued": 0}'::jsonb,
  'a second run does nothing (idempotent)');
SELECT is(private.submit_message(:'t', NULL, '{"to": "+14155550123", "body": "other"}', 'old') ->> 'replayed', 'false',
  'a pruned key can be used again');

-- A month boundary later, the next month's partitions appear.
SELECT c.relname AS newest FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'app.messages'::regclass ORDER BY c.relname DESC LIMIT 1 \gset
SELECT format('DROP TABLE app.%I', :'newest') AS drop_sql \gset
:drop_sql;
SELECT is(app.run_maintenance() -> 'partitions_created', jsonb_build_array(:'newest'),
  'a missing partition ahead is created');
SELECT ok(to_regclass('app.' || :'newest') IS NOT NULL, 'and exists');

-- The sweep. Jobs of an attempt, by status.
CREATE FUNCTION pg_temp.jobs_of(p_attempt uuid, p_statuses text[] DEFAULT ARRAY['queued', 'picked']) RETURNS int
LANGUAGE sql AS $$
  SELECT count(*)::int FROM pgqueuer.pgqueuer
   WHERE entrypoint = 'send' AND status::text = ANY (p_statuses)
     AND convert_from(payload, 'UTF8')::jsonb ->> 'attempt_id' = p_attempt::text
$$;
CREATE FUNCTION pg_temp.set_updated_at(p_attempt uuid, p_at timestamptz) RETURNS void
LANGUAGE sql AS $$ UPDATE app.message_attempts SET updated_at = p_at WHERE id = p_attempt $$;
-- live: pending, untouched for 11 minutes, its submit job still queued.
SELECT pg_temp.attempt_of(pg_temp.new_message(:'t', 'live')) AS a_live \gset
-- picked: claimed, untouched for an hour, its job being run by a worker.
SELECT pg_temp.attempt_of(pg_temp.new_message(:'t', 'picked')) AS a_picked \gset
SELECT app.claim_attempt(:'a_picked') IS NOT NULL AS c \gset
UPDATE pgqueuer.pgqueuer SET status = 'picked'
 WHERE convert_from(payload, 'UTF8')::jsonb ->> 'attempt_id' = :'a_picked';
-- lost: pending, untouched for 11 minutes, its queue row removed by hand.
SELECT pg_temp.new_message(:'t', 'lost') AS m_lost \gset
SELECT pg_temp.attempt_of(:'m_lost') AS a_lost \gset
DELETE FROM pgqueuer.pgqueuer WHERE convert_from(payload, 'UTF8')::jsonb ->> 'attempt_id' = :'a_lost';
-- held: claimed, untouched for 20 minutes, its job held as failed after repeated crashes.
SELECT pg_temp.new_message(:'t', 'held') AS m_held \gset
SELECT pg_temp.attempt_of(:'m_held') AS a_held \gset
SELECT app.claim_attempt(:'a_held') IS NOT NULL AS c \gset
SELECT pg_temp.calling(:'a_held') IS NOT NULL AS k \gset
UPDATE pgqueuer.pgqueuer SET status = 'failed'
 WHERE convert_from(payload, 'UTF8')::jsonb ->> 'attempt_id' = :'a_held';
-- fresh: pending, no job, but touched exactly 10 minutes ago.
SELECT pg_temp.attempt_of(pg_temp.new_message(:'t', 'fresh')) AS a_fresh \gset
DELETE FROM pgqueuer.pgqueuer WHERE convert_from(payload, 'UTF8')::jsonb ->> 'attempt_id' = :'a_fresh';
-- done: handed off, no job, untouched for an hour.
SELECT pg_temp.attempt_of(pg_temp.new_message(:'t', 'done')) AS a_done \gset
SELECT app.record_handoff(:'a_done', 'SM-MAINT-1') IS NOT NULL AS h \gset
-- Its answered status is applied now (maintenance would apply it first otherwise).
SELECT app.apply_receipts() IS NOT NULL AS applied_first \gset
DELETE FROM pgqueuer.pgqueuer WHERE convert_from(payload, 'UTF8')::jsonb ->> 'attempt_id' = :'a_done';
SELECT pg_temp.set_updated_at(:'a_live', now() - interval '11 minutes'),
       pg_temp.set_updated_at(:'a_picked', now() - interval '1 hour'),
       pg_temp.set_updated_at(:'a_lost', now() - interval '11 minutes'),
       pg_temp.set_updated_at(:'a_held', now() - interval '20 minutes'),
       pg_temp.set_updated_at(:'a_fresh', now() - interval '10 minutes'),
       pg_temp.set_updated_at(:'a_done', now() - interval '1 hour') \gset
SELECT is(ARRAY[pg_temp.jobs_of(:'a_live'), pg_temp.jobs_of(:'a_picked'), pg_temp.jobs_of(:'a_lost'),
                pg_temp.jobs_of(:'a_held'), pg_temp.jobs_of(:'a_fresh'), pg_temp.jobs_of(:'a_done')],
  ARRAY[1, 1, 0, 0, 0, 0], 'set-up: only live and picked have a live job');

-- (max over the log: the highest ids were deleted from the queue above)
SELECT max(job_id) AS last_job FROM pgqueuer.pgqueuer_log \gset
SELECT max(id) AS last_event FROM app.message_events \gset
SELECT is(app.run_maintenance(),
  '{"partitions_created": [], "idempotency_keys_pruned": 0, "attempts_requeued": 2, "attempts_given_up": 0, "timers_rearmed": 0, "attempts_timed_out": 0, "imports_requeued": 0}'::jsonb,
  'the sweep requeues the two open attempts that lost their job');
SELECT set_eq(format($$SELECT entrypoint, status::text, convert_from(payload, 'UTF8')::jsonb, execute_after
                        FROM pgqueuer.pgqueuer WHERE id > %s$$, :last_job),
  format($$VALUES ('send', 'queued', jsonb_build_object('attempt_id', %L::uuid), now()),
                  ('send', 'queued', jsonb_build_object('attempt_id', %L::uuid), now())$$, :'a_lost', :'a_held'),
  'exactly one new send_sms job each, due now');
SELECT is((SELECT count(*)::int FROM pgqueuer.pgqueuer_log WHERE job_id > :last_job AND status = 'queued'), 2,
  'with their log rows');
SELECT set_eq(format($$SELECT message_id, attempt_id, event_type, status, provider_status, error_code, details
                        FROM app.message_events WHERE id > %s$$, :last_event),
  format($$VALUES (%L::uuid, %L::uuid, 'requeued', NULL::text, NULL::text, NULL::text,
                   '{"reason": "no_live_job", "attempt_status": "pending", "job_failures": 1}'::jsonb),
                  (%L::uuid, %L::uuid, 'requeued', NULL, NULL, NULL,
                   '{"reason": "no_live_job", "attempt_status": "claimed", "job_failures": 1}'::jsonb)$$,
         :'m_lost', :'a_lost', :'m_held', :'a_held'),
  'exactly one requeued event each: reason no_live_job, with the attempt status');
SELECT results_eq(format($$SELECT id, status, updated_at FROM app.message_attempts WHERE id IN (%L, %L) ORDER BY status$$,
                         :'a_held', :'a_lost'),
  format($$VALUES (%L::uuid, 'claimed', now()), (%L::uuid, 'pending', now())$$, :'a_held', :'a_lost'),
  'their status is unchanged and updated_at is bumped');
SELECT is(pg_temp.jobs_of(:'a_live', ARRAY['queued', 'picked', 'failed']), 1, 'an attempt with a queued job is left alone');
SELECT is(pg_temp.jobs_of(:'a_picked', ARRAY['queued', 'picked', 'failed']), 1, 'one whose job is picked too');
SELECT is(pg_temp.jobs_of(:'a_fresh', ARRAY['queued', 'picked', 'failed']), 0,
  'one touched 10 minutes ago (not older) is left alone');
SELECT is(pg_temp.jobs_of(:'a_done', ARRAY['queued', 'picked', 'failed']), 0, 'a handed-off one is not open');
SELECT results_eq(format($$SELECT id, updated_at FROM app.message_attempts WHERE id IN (%L, %L, %L, %L) ORDER BY updated_at, id$$,
                         :'a_live', :'a_picked', :'a_fresh', :'a_done'),
  format($$VALUES (%L::uuid, now() - interval '1 hour'), (%L::uuid, now() - interval '1 hour'),
                  (%L::uuid, now() - interval '11 minutes'), (%L::uuid, now() - interval '10 minutes')$$,
         least(:'a_picked'::uuid, :'a_done'::uuid), greatest(:'a_picked'::uuid, :'a_done'::uuid), :'a_live', :'a_fresh'),
  'and none of those is touched');
SELECT is((SELECT count(*)::int FROM app.message_events WHERE event_type = 'requeued'), 2, 'no other requeued event');

-- A second run does nothing more: the requeued attempts have a live job (and were touched).
SELECT pg_temp.counts() AS before \gset
SELECT is(app.run_maintenance(),
  '{"partitions_created": [], "idempotency_keys_pruned": 0, "attempts_requeued": 0, "attempts_given_up": 0, "timers_rearmed": 0, "attempts_timed_out": 0, "imports_requeued": 0}'::jsonb,
  'a second run requeues nothing');
SELECT is(pg_temp.counts(), :'before'::jsonb, 'and writes nothing');
-- Even once they are old again, their new job is live.
SELECT pg_temp.set_updated_at(:'a_lost', now() - interval '1 day'),
       pg_temp.set_updated_at(:'a_held', now() - interval '1 day') \gset
SELECT is(app.run_maintenance() -> 'attempts_requeued', '0'::jsonb, 'old again, but with a live job: not requeued');
SELECT is(pg_temp.counts(), :'before'::jsonb, 'nothing written');
-- The requeued job is an ordinary send job.
SELECT is(app.claim_attempt(:'a_lost') ->> 'action', 'send', 'the requeued pending attempt is sent by its new job');
SELECT pg_temp.end_lease(:'a_held') IS NULL AS e \gset
SELECT is(app.claim_attempt(:'a_held') ->> 'action', 'reconcile', 'the requeued claimed attempt is reconciled first');

-- Only send_sms jobs count.
SELECT pg_temp.attempt_of(pg_temp.new_message(:'t', 'other job')) AS a_other \gset
UPDATE pgqueuer.pgqueuer SET entrypoint = 'maintenance'
 WHERE convert_from(payload, 'UTF8')::jsonb ->> 'attempt_id' = :'a_other';
SELECT pg_temp.set_updated_at(:'a_other', now() - interval '11 minutes') \gset
SELECT is(app.run_maintenance() -> 'attempts_requeued', '1'::jsonb, 'a job of another entrypoint is no live send job');
SELECT is(pg_temp.jobs_of(:'a_other'), 1, 'the attempt got a send_sms job');

-- At most 1000 per run, the longest untouched first.
SELECT set_config('hermes_test.tenant', :'t', true) IS NOT NULL AS s \gset
CREATE TEMP TABLE bulk (n int, attempt_id uuid);
DO $$
DECLARE
  v_tenant uuid := current_setting('hermes_test.tenant')::uuid;
BEGIN
  FOR i IN 1..1001 LOOP
    INSERT INTO bulk VALUES (i, pg_temp.attempt_of(pg_temp.new_message(v_tenant, 'bulk ' || i)));
  END LOOP;
END
$$;
DELETE FROM pgqueuer.pgqueuer
 WHERE (convert_from(payload, 'UTF8')::jsonb ->> 'attempt_id')::uuid IN (SELECT attempt_id FROM bulk);
UPDATE app.message_attempts a SET updated_at = now() - interval '2 hours' + b.n * interval '1 second'
  FROM bulk b WHERE a.id = b.attempt_id;
SELECT is(app.run_maintenance() -> 'attempts_requeued', '1000'::jsonb, '1001 lost attempts: 1000 requeued in one run');
SELECT is((SELECT array_agg(b.n) FROM bulk b WHERE pg_temp.jobs_of(b.attempt_id) = 0), ARRAY[1001],
  'the most recently touched one waits for the next run');
SELECT is(app.run_maintenance() -> 'attempts_requeued', '1'::jsonb, 'which requeues it');
SELECT is((SELECT count(*)::int FROM bulk b WHERE pg_temp.jobs_of(b.attempt_id) = 1), 1001, 'each has exactly one job');
SELECT is((SELECT count(*)::int FROM app.message_events e JOIN bulk b ON b.attempt_id = e.attempt_id
            WHERE e.event_type = 'requeued'), 1001, 'and one requeued event');

-- The default window (2 minutes), and never shorter than the claim lease: a claimed
-- attempt whose lease may still be live is not given a second job.
UPDATE private.settings SET value = '2 minutes' WHERE key = 'requeue_after';
SELECT pg_temp.attempt_of(pg_temp.new_message(:'t', 'two minutes')) AS a_2m \gset
SELECT pg_temp.attempt_of(pg_temp.new_message(:'t', 'one minute')) AS a_1m \gset
DELETE FROM pgqueuer.pgqueuer
 WHERE convert_from(payload, 'UTF8')::jsonb ->> 'attempt_id' IN (:'a_2m', :'a_1m');
SELECT pg_temp.set_updated_at(:'a_2m', now() - interval '2 minutes 1 second'),
       pg_temp.set_updated_at(:'a_1m', now() - interval '119 seconds') \gset
SELECT is(app.run_maintenance() -> 'attempts_requeued', '2'::jsonb,
  'by default: idle over 2 minutes is requeued (and so is "fresh", idle 10 minutes)');
SELECT is(ARRAY[pg_temp.jobs_of(:'a_2m'), pg_temp.jobs_of(:'a_fresh'), pg_temp.jobs_of(:'a_1m')], ARRAY[1, 1, 0],
  'idle under 2 minutes is not');
UPDATE private.settings SET value = '1 second' WHERE key = 'requeue_after';
UPDATE private.settings SET value = '5 minutes' WHERE key = 'claim_lease';
SELECT is(app.run_maintenance() -> 'attempts_requeued', '0'::jsonb,
  'requeue_after shorter than the claim lease: the lease (5 minutes) is the floor');
UPDATE private.settings SET value = '60 seconds' WHERE key = 'claim_lease';

-- The receipt timeout: a hand-off with no final receipt for receipt_timeout ends 'unknown'.
SELECT (pg_temp.new_tenant('Silent Carrier') -> 'tenant' ->> 'id') AS ts \gset
SELECT pg_temp.new_message(:'ts', 'never heard of again') AS ms \gset
SELECT pg_temp.attempt_of(:'ms') AS as_ \gset
SELECT pg_temp.new_message(:'ts', 'recent') AS mr \gset
SELECT pg_temp.attempt_of(:'mr') AS ar \gset
SELECT app.claim_attempt(:'as_') IS NOT NULL AS c1, app.claim_attempt(:'ar') IS NOT NULL AS c2 \gset
SELECT app.record_handoff(:'as_', 'SM-silent', 'queued') IS NOT NULL AS h1,
       app.record_handoff(:'ar', 'SM-recent', 'sent') IS NOT NULL AS h2 \gset
SELECT app.apply_receipts() IS NOT NULL AS applied \gset
UPDATE app.message_attempts SET handed_off_at = now() - interval '72 hours 1 second' WHERE id = :'as_';
UPDATE app.message_attempts SET handed_off_at = now() - interval '71 hours' WHERE id = :'ar';
SELECT is(app.run_maintenance() -> 'attempts_timed_out', '1'::jsonb, 'one hand-off is past the 72 h receipt timeout');
SELECT is(pg_temp.message_status(:'ms'), 'unknown', 'its message ends unknown');
SELECT results_eq(format('SELECT status, error_code, completed_at IS NOT NULL FROM app.messages WHERE id = %L', :'ms'),
  $$VALUES ('unknown', 'receipt_timeout', true)$$, 'with error_code receipt_timeout, completed');
SELECT is(pg_temp.attempt_status(:'as_'), 'unknown', 'and so does the attempt');
SELECT is((pg_temp.events_of(:'ms'))[cardinality(pg_temp.events_of(:'ms'))], 'receipt_timeout', 'a receipt_timeout event says why');
SELECT is(pg_temp.message_status(:'mr'), 'sent', 'the recent hand-off is left alone');
SELECT is(app.record_receipt('twilio', :'as_', 'SM-silent', 'delivered'), '{"duplicate": false, "queued": true}'::jsonb,
  'a receipt after the timeout is recorded');
SELECT is(app.apply_receipts() -> 'attempts_changed', '0'::jsonb, 'but applying it changes nothing');
SELECT results_eq(format($$SELECT a.status, a.error_code, m.status, m.error_code FROM app.message_attempts a
                           JOIN app.messages m ON m.id = a.message_id WHERE a.id = %L$$, :'as_'),
  $$VALUES ('unknown', 'receipt_timeout', 'unknown', 'receipt_timeout')$$,
  'attempt and message stay unknown: one terminal state');
SELECT is(app.run_maintenance() -> 'attempts_timed_out', '0'::jsonb, 'a second run times out nothing more');

-- A final receipt that reached the inbox in time but was not applied yet (the applier
-- lagging) wins over the timeout: maintenance applies the inbox first.
SELECT pg_temp.new_message(:'ts', 'late applier') AS ml \gset
SELECT pg_temp.attempt_of(:'ml') AS al \gset
SELECT app.claim_attempt(:'al') IS NOT NULL AS c3 \gset
SELECT app.record_handoff(:'al', 'SM-lagging', 'queued') IS NOT NULL AS h3 \gset
SELECT app.apply_receipts() IS NOT NULL AS applied3 \gset
UPDATE app.message_attempts SET handed_off_at = now() - interval '73 hours' WHERE id = :'al';
SELECT app.record_receipt('twilio', :'al', 'SM-lagging', 'delivered') IS NOT NULL AS r3 \gset
SELECT is(app.run_maintenance() -> 'attempts_timed_out', '0'::jsonb, 'nothing timed out');
SELECT is(pg_temp.message_status(:'ml'), 'delivered', 'the message is delivered, not unknown');

SELECT ok(has_function_privilege('hermes_worker', 'app.run_maintenance()', 'EXECUTE')
          AND NOT has_function_privilege('hermes_api', 'app.run_maintenance()', 'EXECUTE'),
  'the workers may run it, the API may not');

SELECT * FROM finish();
ROLLBACK;
