-- private.enqueue_jobs: the set-based private.enqueue_job. One pgqueuer job (and its
-- log row) per payload, start times paired by position, in the caller's transaction.
BEGIN;
\ir ../../helpers.psql
SELECT plan(12);

SELECT coalesce(max(id), 0) AS last_job FROM pgqueuer.pgqueuer \gset
SELECT is(private.enqueue_jobs('send_sms', ARRAY['{"attempt_id": "a1"}', '{"attempt_id": "a2"}', '{"attempt_id": "a3"}']::jsonb[]),
  3::bigint, 'three payloads: three jobs');
SELECT results_eq(format($$SELECT status::text, entrypoint, priority, execute_after, attempts,
                                  convert_from(payload, 'UTF8') COLLATE "default"
                             FROM pgqueuer.pgqueuer WHERE id > %s ORDER BY id$$, :last_job),
  $$VALUES ('queued', 'send_sms', 0, now(), 0, '{"attempt_id": "a1"}'), ('queued', 'send_sms', 0, now(), 0, '{"attempt_id": "a2"}'),
           ('queued', 'send_sms', 0, now(), 0, '{"attempt_id": "a3"}')$$,
  'queued send_sms jobs, priority 0, due now, in payload order, the payload as jsonb text in UTF-8');
SELECT results_eq(format($$SELECT l.job_id, l.status::text, l.entrypoint, l.priority FROM pgqueuer.pgqueuer_log l
                           WHERE l.job_id > %s ORDER BY l.job_id$$, :last_job),
  format($$SELECT id, 'queued', 'send_sms', 0 FROM pgqueuer.pgqueuer WHERE id > %s ORDER BY id$$, :last_job),
  'each job has one queued log row');

SELECT coalesce(max(id), 0) AS last_job FROM pgqueuer.pgqueuer \gset
SELECT is(private.enqueue_jobs('send_sms', ARRAY['{"n": 1}', '{"n": 2}', '{"n": 3}']::jsonb[],
                               ARRAY[now() + interval '10 seconds', NULL, now() + interval '1 minute']),
  3::bigint, 'with start times');
SELECT results_eq(format($$SELECT convert_from(payload, 'UTF8')::jsonb, execute_after FROM pgqueuer.pgqueuer
                           WHERE id > %s ORDER BY id$$, :last_job),
  $$VALUES ('{"n": 1}'::jsonb, now() + interval '10 seconds'), ('{"n": 2}', now()), ('{"n": 3}', now() + interval '1 minute')$$,
  'each payload gets the start time at its position (NULL: now)');
SELECT coalesce(max(id), 0) AS last_job FROM pgqueuer.pgqueuer \gset
SELECT is(private.enqueue_jobs('send_sms', ARRAY['{"n": 4}', '{"n": 5}']::jsonb[], ARRAY[now() + interval '5 seconds']),
  2::bigint, 'fewer start times than payloads');
SELECT results_eq(format($$SELECT convert_from(payload, 'UTF8')::jsonb, execute_after FROM pgqueuer.pgqueuer
                           WHERE id > %s ORDER BY id$$, :last_job),
  $$VALUES ('{"n": 4}'::jsonb, now() + interval '5 seconds'), ('{"n": 5}', now())$$, 'the ones without a start time are due now');

SELECT pg_temp.counts() AS before \gset
SELECT is(private.enqueue_jobs('send_sms', '{}'::jsonb[]), 0::bigint, 'no payloads: no job');
SELECT is(private.enqueue_jobs('send_sms', NULL), 0::bigint, 'NULL payloads: no job');
SELECT is(pg_temp.counts(), :'before'::jsonb, 'nothing written');

SAVEPOINT before_rollback;
SELECT private.enqueue_jobs('send_sms', ARRAY['{"n": 6}', '{"n": 7}']::jsonb[]) AS n \gset
ROLLBACK TO SAVEPOINT before_rollback;
SELECT is(pg_temp.counts(), :'before'::jsonb, 'a rolled-back caller leaves no job and no log row');

SELECT ok((SELECT NOT prosecdef FROM pg_proc WHERE oid = 'private.enqueue_jobs(text,jsonb[],timestamptz[])'::regprocedure)
          AND NOT has_function_privilege('hermes_api', 'private.enqueue_jobs(text,jsonb[],timestamptz[])', 'EXECUTE')
          AND NOT has_function_privilege('hermes_worker', 'private.enqueue_jobs(text,jsonb[],timestamptz[])', 'EXECUTE'),
  'not SECURITY DEFINER, and no client role may call it');

SELECT * FROM finish();
ROLLBACK;
