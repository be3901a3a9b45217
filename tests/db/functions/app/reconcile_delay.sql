-- The reconcile delay (issue 19): a provider call that got no answer (timeout,
-- connection lost; at Twilio also a 5xx) may have created the message, and the
-- provider lists it only some time later. Such an attempt is not reconciled -- looked
-- up and resent when the listing is empty -- before private.settings reconcile_delay
-- (2 minutes): its retry job is due no earlier, a job that comes earlier anyway
-- (another job, the sweep) is deferred by the claim, and a reconcile waits. An answered refusal (429) reconciles at once.
BEGIN;
\ir ../../helpers.psql
SELECT plan(16);

SELECT (pg_temp.new_tenant('Delay Co') -> 'tenant' ->> 'id') AS t \gset
SELECT pg_temp.new_message(:'t', 'timeout') AS m1 \gset
SELECT pg_temp.attempt_of(:'m1') AS a1 \gset
SELECT pg_temp.new_message(:'t', 'five hundred') AS m2 \gset
SELECT pg_temp.attempt_of(:'m2') AS a2 \gset
SELECT pg_temp.new_message(:'t', 'too many') AS m3 \gset
SELECT pg_temp.attempt_of(:'m3') AS a3 \gset

SELECT is((SELECT value FROM private.settings WHERE key = 'reconcile_delay'), '2 minutes',
  'the reconcile delay is a setting: 2 minutes');

-- A Twilio timeout: no answer.
SELECT app.claim_attempt(:'a1') IS NOT NULL AS c \gset
SELECT pg_temp.calling(:'a1') IS NOT NULL AS k \gset
SELECT max(id) AS last_job FROM pgqueuer.pgqueuer \gset
SELECT is(app.record_send_error(:'a1', 1, 'TimeoutError', 'no answer from Twilio', NULL) ->> 'action',
  'retry_scheduled', 'a timeout: retry scheduled');
SELECT ok((SELECT execute_after >= now() + interval '2 minutes' FROM pgqueuer.pgqueuer WHERE id > :last_job),
  'its job is due no earlier than the reconcile delay (not a second later)');
SELECT is(app.claim_attempt(:'a1') - 'attempt_id' - 'wait_seconds', '{"action": "defer", "reason": "reconcile_delay"}'::jsonb,
  'another job comes early anyway: deferred to the delay''s end, not claimed');
SELECT max(id) AS last_job FROM pgqueuer.pgqueuer \gset
SELECT is(app.reconcile_attempt(:'a1', 1, '[]') ->> 'action', 'wait',
  'an empty listing seconds after the timeout is not "the provider has no record": wait, no resend');
SELECT is(pg_temp.attempt_status(:'a1'), 'claimed', 'the attempt stays claimed');
SELECT ok((SELECT execute_after >= now() + interval '2 minutes' FROM pgqueuer.pgqueuer WHERE id > :last_job),
  'and is looked at again after the delay');
SELECT ok(NOT EXISTS (SELECT 1 FROM app.message_events WHERE message_id = :'m1' AND event_type = 'resend'),
  'nothing was resent');

-- A Twilio 5xx: Twilio may have created it too.
SELECT app.claim_attempt(:'a2') IS NOT NULL AS c \gset
SELECT pg_temp.calling(:'a2') IS NOT NULL AS k \gset
SELECT is((app.record_send_error(:'a2', 1, '20500', 'Internal Server Error', 500) ->> 'delay_seconds')::numeric,
  120::numeric, 'a 5xx at Twilio: the retry waits the reconcile delay');
SELECT is(app.reconcile_attempt(:'a2', 1, '[]') ->> 'action', 'wait', 'and an early reconcile waits');

-- Once the delay is over, an empty listing means the provider never got it: resend.
UPDATE app.message_attempts SET reconcile_after = now() - interval '1 second' WHERE id = :'a2';
SELECT app.claim_attempt(:'a2') IS NOT NULL AS c \gset
SELECT is(app.reconcile_attempt(:'a2', 2, '[]') ->> 'action', 'send', 'after the delay: resend');
SELECT is((SELECT reconcile_after FROM app.message_attempts WHERE id = :'a2'), NULL::timestamptz,
  'the resend''s own outcome starts afresh');

-- An answered refusal (429): Twilio did not take it; nothing to wait for.
SELECT app.claim_attempt(:'a3') IS NOT NULL AS c \gset
SELECT pg_temp.calling(:'a3') IS NOT NULL AS k \gset
SELECT is((app.record_send_error(:'a3', 1, '20429', 'Too Many Requests', 429) ->> 'delay_seconds')::numeric,
  1::numeric, 'a 429 (an answer): the usual backoff');
SELECT app.claim_attempt(:'a3') IS NOT NULL AS c \gset
SELECT is(app.reconcile_attempt(:'a3', 2, '[]') ->> 'action', 'send', 'and its reconcile resends at once');

-- A worker that died during its call (after its calling mark): no answer either. Once
-- the claim lease has run out the attempt is claimed again, but not reconciled before
-- the reconcile delay after the call began.
SELECT pg_temp.new_message(:'t', 'crashed') AS m4 \gset
SELECT pg_temp.attempt_of(:'m4') AS a4 \gset
SELECT app.claim_attempt(:'a4') IS NOT NULL AS c \gset
SELECT pg_temp.calling(:'a4') IS NOT NULL AS k \gset
UPDATE app.message_attempts SET last_claimed_at = now() - interval '1 hour' WHERE id = :'a4';
SELECT is(app.claim_attempt(:'a4') ->> 'reason', 'reconcile_delay', 'the lease ran out, but the claim waits for the delay');
SELECT is(app.reconcile_attempt(:'a4', 1, '[]') ->> 'action', 'wait',
  'but within the reconcile delay of its call an empty listing proves nothing: wait');

SELECT * FROM finish();
ROLLBACK;
