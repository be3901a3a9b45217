-- app.record_send_error: permanent errors fail the message; transient ones schedule a
-- reconcile-first retry with backoff, up to 6 claims.
BEGIN;
\ir ../../helpers.psql
SELECT plan(30);

SELECT (pg_temp.new_tenant('Error Co') -> 'tenant' ->> 'id') AS t \gset
SELECT pg_temp.new_message(:'t') AS m1 \gset
SELECT pg_temp.attempt_of(:'m1') AS a1 \gset
SELECT pg_temp.new_message(:'t') AS m2 \gset
SELECT pg_temp.attempt_of(:'m2') AS a2 \gset
SELECT pg_temp.new_message(:'t') AS m3 \gset
SELECT pg_temp.attempt_of(:'m3') AS a3 \gset

-- Not the current claim.
SELECT is(app.record_send_error(private.uuid7(), 1, '20500', 'x', false),
  '{"action": "skip", "reason": "attempt_not_found"}'::jsonb, 'an unknown attempt: skip attempt_not_found');
SELECT is(app.record_send_error(:'a1', 1, '20500', 'x', false),
  '{"action": "skip", "reason": "not_current_claim"}'::jsonb, 'a pending (unclaimed) attempt: skip not_current_claim');
SELECT app.claim_attempt(:'a1') IS NOT NULL AS c \gset
SELECT is(app.record_send_error(:'a1', 2, '20500', 'x', false),
  '{"action": "skip", "reason": "not_current_claim"}'::jsonb, 'a claim_no that is not the current one: skip');
SELECT is(pg_temp.events_of(:'m1'), ARRAY['accepted', 'claimed'], 'a skipped error logs nothing');

-- Permanent: the provider refused it.
SELECT pg_temp.counts() AS before \gset
SELECT is(app.record_send_error(:'a1', 1, '21211', 'The ''To'' number is not a valid phone number.', true),
  '{"action": "failed", "error_code": "twilio:21211"}'::jsonb, 'a permanent error: failed, error_code twilio:21211');
SELECT results_eq(format('SELECT status, error_code, error_message FROM app.message_attempts WHERE id = %L', :'a1'),
  $$VALUES ('failed', 'twilio:21211', 'The ''To'' number is not a valid phone number.')$$, 'the attempt failed');
SELECT results_eq(format('SELECT status, error_code, error_message, provider, completed_at FROM app.messages WHERE id = %L', :'m1'),
  $$VALUES ('failed', 'twilio:21211', 'The ''To'' number is not a valid phone number.', 'twilio', now())$$,
  'the message failed (terminal) with error_code twilio:21211');
SELECT results_eq(format($$SELECT event_type, error_code, details ->> 'permanent', details ->> 'claim_no'
                           FROM app.message_events WHERE message_id = %L AND event_type = 'send_error'$$, :'m1'),
  $$VALUES ('send_error', 'twilio:21211', 'true', '1')$$, 'a send_error event');
SELECT is((SELECT count(*) FROM pgqueuer.pgqueuer)::int, (:'before'::jsonb ->> 'jobs')::int,
  'no retry job for a permanent error');
SELECT is(app.record_send_error(:'a1', 1, '21211', 'again', true),
  '{"action": "skip", "reason": "not_current_claim"}'::jsonb, 'a failed attempt: skip');

-- Transient: retry, reconcile first.
SELECT app.claim_attempt(:'a2') IS NOT NULL AS c \gset
SELECT max(id) AS last_job FROM pgqueuer.pgqueuer \gset
SELECT is(app.record_send_error(:'a2', 1, '20500', 'Internal Server Error', false),
  '{"action": "retry_scheduled", "delay_seconds": 1.000000}'::jsonb, 'a transient error: retry_scheduled after 1 s');
SELECT results_eq(format($$SELECT entrypoint, status::text, convert_from(payload, 'UTF8')::jsonb, execute_after
                           FROM pgqueuer.pgqueuer WHERE id > %s$$, :last_job),
  format($$VALUES ('send_sms', 'queued', jsonb_build_object('attempt_id', %L::uuid), now() + interval '1 second')$$, :'a2'),
  'one send_sms job for the attempt, due in the future');
SELECT ok((SELECT execute_after > now() FROM pgqueuer.pgqueuer WHERE id > :last_job), 'execute_after is in the future');
SELECT is((SELECT count(*)::int FROM pgqueuer.pgqueuer_log WHERE job_id > :last_job), 1, 'with its log row');
SELECT is(pg_temp.attempt_status(:'a2'), 'claimed', 'the attempt stays claimed (the next claim reconciles)');
SELECT is(pg_temp.message_status(:'m2'), 'sending', 'the message stays sending');
SELECT results_eq(format($$SELECT event_type, error_code FROM app.message_events
                           WHERE message_id = %L AND event_type IN ('send_error', 'retry_scheduled') ORDER BY id$$, :'m2'),
  $$VALUES ('send_error', 'twilio:20500'), ('retry_scheduled', 'twilio:20500')$$,
  'a send_error and a retry_scheduled event');
SELECT is(app.claim_attempt(:'a2') ->> 'action', 'reconcile', 'the retry claims it again: reconcile');
SELECT is((app.record_send_error(:'a2', 2, '429', 'Too Many Requests', false, interval '30 seconds') ->> 'delay_seconds')::numeric,
  30::numeric, 'Retry-After longer than the backoff is honoured');
SELECT is((SELECT execute_after FROM pgqueuer.pgqueuer ORDER BY id DESC LIMIT 1), now() + interval '30 seconds',
  'the job is due after Retry-After');
SELECT app.claim_attempt(:'a2') IS NOT NULL AS c \gset
SELECT is((app.record_send_error(:'a2', 3, NULL, NULL, false, interval '1 second') ->> 'delay_seconds')::numeric,
  4::numeric, 'a shorter Retry-After does not shorten the backoff (claim 3: 4 s)');
SELECT is((SELECT error_code FROM app.message_events WHERE message_id = :'m2' ORDER BY id DESC LIMIT 1), 'twilio:unknown',
  'no error code: twilio:unknown');

-- Exponential backoff, then provider_unavailable after 6 claims.
CREATE TEMP TABLE outcomes (claim_no int, result jsonb);
SELECT set_config('hermes_test.attempt', :'a3', true) IS NOT NULL AS s \gset
DO $$
DECLARE
  v_attempt uuid := current_setting('hermes_test.attempt')::uuid;
  v_claim jsonb;
BEGIN
  FOR i IN 1..6 LOOP
    v_claim := app.claim_attempt(v_attempt);
    INSERT INTO outcomes VALUES ((v_claim ->> 'claim_no')::int,
      app.record_send_error(v_attempt, (v_claim ->> 'claim_no')::int, '20503', 'Service Unavailable', false));
  END LOOP;
END
$$;
SELECT results_eq('SELECT claim_no, result ->> ''action'', (result ->> ''delay_seconds'')::numeric FROM outcomes ORDER BY claim_no',
  $$VALUES (1, 'retry_scheduled', 1::numeric), (2, 'retry_scheduled', 2), (3, 'retry_scheduled', 4),
           (4, 'retry_scheduled', 8), (5, 'retry_scheduled', 16), (6, 'failed', NULL)$$,
  'backoff 1, 2, 4, 8, 16 s; the 6th claim fails');
SELECT is((SELECT result FROM outcomes WHERE claim_no = 6), '{"action": "failed", "error_code": "provider_unavailable"}'::jsonb,
  'after 6 claims: failed, provider_unavailable');
SELECT results_eq(format('SELECT status, error_code, error_message FROM app.messages WHERE id = %L', :'m3'),
  $$VALUES ('failed', 'provider_unavailable', 'Service Unavailable')$$,
  'the message failed with error_code provider_unavailable');
SELECT is(pg_temp.attempt_status(:'a3'), 'failed', 'the attempt failed');
SELECT is((SELECT count(*)::int FROM pgqueuer.pgqueuer WHERE convert_from(payload, 'UTF8')::jsonb ->> 'attempt_id' = :'a3'),
  6, 'five retry jobs (plus the submit''s job), none after the failure');
SELECT is(app.claim_attempt(:'a3'), '{"action": "skip", "reason": "attempt_failed"}'::jsonb, 'no 7th claim');

-- The error message is capped.
SELECT pg_temp.new_message(:'t') AS m4 \gset
SELECT pg_temp.attempt_of(:'m4') AS a4 \gset
SELECT app.claim_attempt(:'a4') IS NOT NULL AS c \gset
SELECT app.record_send_error(:'a4', 1, '21610', repeat('x', 2000), true) IS NOT NULL AS e \gset
SELECT is((SELECT length(error_message) FROM app.messages WHERE id = :'m4'), 500, 'error messages are cut to 500 characters');
SELECT ok(has_function_privilege('hermes_worker', 'app.record_send_error(uuid,integer,text,text,boolean,interval)', 'EXECUTE'),
  'the workers may record send errors');

SELECT * FROM finish();
ROLLBACK;
