-- private.enqueue_job: a pgqueuer job and its log row, in the caller's transaction.
BEGIN;
\ir ../../helpers.psql
SELECT plan(9);

SELECT private.enqueue_job('send_sms', '{"attempt_id": "0190a000-0000-7000-8000-000000000001"}') AS job1 \gset
SELECT private.enqueue_job('send_sms', '{"n": 2}', interval '90 seconds', 5) AS job2 \gset

SELECT results_eq(
  format('SELECT status::text, entrypoint, priority, execute_after, attempts, dedupe_key FROM pgqueuer.pgqueuer WHERE id = %s', :job1),
  $$VALUES ('queued', 'send_sms', 0, now(), 0, NULL::text)$$,
  'a queued send_sms job, priority 0, due now');
SELECT is((SELECT convert_from(payload, 'UTF8')::jsonb FROM pgqueuer.pgqueuer WHERE id = :job1),
  '{"attempt_id": "0190a000-0000-7000-8000-000000000001"}'::jsonb, 'the payload is the JSON, UTF-8 encoded');
SELECT is((SELECT convert_from(payload, 'UTF8') FROM pgqueuer.pgqueuer WHERE id = :job1),
  '{"attempt_id": "0190a000-0000-7000-8000-000000000001"}', 'the payload bytes are jsonb''s text form');
SELECT results_eq(
  format('SELECT job_id, status::text, entrypoint, priority FROM pgqueuer.pgqueuer_log ORDER BY id'),
  format($$VALUES (%s::bigint, 'queued', 'send_sms', 0), (%s::bigint, 'queued', 'send_sms', 5)$$, :job1, :job2),
  'each job has one queued log row');
SELECT is((SELECT execute_after FROM pgqueuer.pgqueuer WHERE id = :job2), now() + interval '90 seconds',
  'execute_after is now() + the delay');
SELECT is((SELECT priority FROM pgqueuer.pgqueuer WHERE id = :job2), 5, 'the priority is passed');
SELECT ok(:job2 > :job1, 'ids increase');
SAVEPOINT before_rollback;
SELECT private.enqueue_job('send_sms', '{"n": 3}') AS job3 \gset
ROLLBACK TO SAVEPOINT before_rollback;
SELECT is((SELECT count(*)::int FROM pgqueuer.pgqueuer), 2, 'a rolled-back caller leaves no job');
SELECT is((SELECT count(*)::int FROM pgqueuer.pgqueuer_log), 2, 'and no log row');

SELECT * FROM finish();
ROLLBACK;
