-- app.expire_steps: a step_timeout job expires its step only if the step is still just
-- handed off, past its timeout, the message's current step, the message unfinished and
-- a later step waits; anything else is a no-op (see settle_attempts.sql for the cascade).
BEGIN;
\ir ../../helpers.psql
SELECT plan(6);

SELECT (pg_temp.new_tenant('Timers Co') -> 'tenant' ->> 'id') AS t \gset
SELECT pg_temp.set_policy(:'t', '{"default_category": "transactional", "content_dedup_window": "0"}');
UPDATE app.tenants SET default_email_from = 'hi@timers.example' WHERE id = :'t';
SELECT pg_temp.new_sender(:'t', 'email', 'hi@timers.example') AS email_sender \gset
CREATE FUNCTION pg_temp.cascade(p_tenant uuid, p_to text) RETURNS uuid LANGUAGE sql AS $$
  SELECT (private.submit_message(p_tenant, NULL, jsonb_build_object('channels', jsonb_build_array(
    jsonb_build_object('channel', 'sms', 'to', p_to, 'body', 'x', 'timeout_seconds', 10),
    jsonb_build_object('channel', 'email', 'to', 'z@example.com', 'subject', 's', 'body', 'x'))))
    #>> '{message,id}')::uuid
$$;
CREATE FUNCTION pg_temp.first(p_message uuid) RETURNS uuid LANGUAGE sql AS $$
  SELECT id FROM app.message_attempts WHERE message_id = p_message AND attempt_no = 1
$$;

SELECT pg_temp.cascade(:'t', '+14155550131') AS m1 \gset
SELECT is(app.expire_steps(ARRAY[pg_temp.first(:'m1')]) ->> 'expired', '0', 'a step not handed off: nothing');
SELECT app.claim_attempt(pg_temp.first(:'m1')) IS NOT NULL AS c \gset
SELECT app.record_handoff(pg_temp.first(:'m1'), 'SM-T1', 'queued') IS NOT NULL AS h \gset
SELECT is(app.expire_steps(ARRAY[pg_temp.first(:'m1')]) ->> 'expired', '0', 'a job that runs early: nothing');
UPDATE app.message_attempts SET handed_off_at = now() - interval '11 seconds' WHERE id = pg_temp.first(:'m1');
-- The later step is gone (say, canceled by an operator): there is nothing to move on to.
UPDATE app.message_attempts SET status = 'canceled' WHERE message_id = :'m1' AND attempt_no = 2;
SELECT is(app.expire_steps(ARRAY[pg_temp.first(:'m1')]) ->> 'expired', '0',
  'no later step waiting: the step keeps waiting for its receipt');
UPDATE app.message_attempts SET status = 'waiting' WHERE message_id = :'m1' AND attempt_no = 2;
SELECT is(app.expire_steps(ARRAY[pg_temp.first(:'m1'), pg_temp.first(:'m1')]) -> 'messages' ->> 'advanced', '1',
  'due, named twice: expired once, the cascade moved on once');
SELECT is(app.expire_steps(ARRAY[pg_temp.first(:'m1')]) ->> 'expired', '0', 'again: nothing (it is timed out already)');
SELECT is(app.expire_steps(ARRAY['0190a000-0000-7000-8000-000000000000'::uuid]) ->> 'expired', '0',
  'an attempt that does not exist: nothing');

SELECT * FROM finish();
ROLLBACK;
