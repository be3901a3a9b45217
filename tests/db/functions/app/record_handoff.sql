-- app.record_handoff: the provider accepted the message; idempotent; a second SID is
-- recorded as a duplicate hand-off, never hidden. The provider status given is applied
-- like a receipt (private.apply_provider_status): a terminal one ends the message.
BEGIN;
\ir ../../helpers.psql
SELECT plan(37);

SELECT (pg_temp.new_tenant('Handoff Co') -> 'tenant' ->> 'id') AS t \gset
SELECT pg_temp.new_message(:'t') AS m \gset
SELECT pg_temp.attempt_of(:'m') AS a \gset
SELECT app.claim_attempt(:'a') IS NOT NULL AS c \gset

SELECT is(pg_temp.problem(format($$SELECT app.record_handoff(%L, NULL)$$, :'a')), 'HM422 missing_provider_message_id',
  'no SID: HM422 missing_provider_message_id');
SELECT is(pg_temp.problem(format($$SELECT app.record_handoff(%L, '')$$, :'a')), 'HM422 missing_provider_message_id',
  'an empty SID: HM422 missing_provider_message_id');
SELECT is(pg_temp.problem(format($$SELECT app.record_handoff(%L, 'SM0')$$, private.uuid7())), 'HM404 attempt_not_found',
  'an unknown attempt: HM404 attempt_not_found');

SELECT is(app.record_handoff(:'a', 'SM-H1'), '{"status": "sent"}'::jsonb, 'the hand-off: the message is sent');
SELECT results_eq(format($$SELECT status, provider_message_id, provider_status, provider_status_rank, handed_off_at
                           FROM app.message_attempts WHERE id = %L$$, :'a'),
  $$VALUES ('handed_off', 'SM-H1', 'queued', 20, now())$$,
  'the attempt is handed off with the SID and provider status queued (the default)');
SELECT results_eq(format('SELECT status, provider, provider_message_id, sent_at, completed_at FROM app.messages WHERE id = %L', :'m'),
  $$VALUES ('sent', 'twilio', 'SM-H1', now(), NULL::timestamptz)$$, 'the message is sent, with provider and SID');
SELECT results_eq(format($$SELECT event_type, status, provider_status, error_code, details FROM app.message_events
                           WHERE message_id = %L AND event_type = 'handed_off'$$, :'m'),
  $$VALUES ('handed_off', 'sent', 'queued', NULL::text, '{"provider_message_id": "SM-H1"}'::jsonb)$$,
  'one handed_off event');

-- Idempotent.
SELECT pg_temp.counts() AS before \gset
SELECT is(app.record_handoff(:'a', 'SM-H1'), '{"status": "sent"}'::jsonb, 'the same hand-off again: same answer');
SELECT is(pg_temp.counts(), :'before'::jsonb, 'and no new row anywhere (no second event)');
SELECT results_eq(format('SELECT status, provider_message_id, handed_off_at FROM app.message_attempts WHERE id = %L', :'a'),
  $$VALUES ('handed_off', 'SM-H1', now())$$, 'the attempt is unchanged');

-- A different SID for the same attempt: a duplicate hand-off (two provider messages).
SELECT is(app.record_handoff(:'a', 'SM-H2', 'sent'), '{"status": "duplicate_handoff"}'::jsonb,
  'another SID: status duplicate_handoff');
SELECT results_eq(format($$SELECT event_type, status, provider_status, error_code, details FROM app.message_events
                           WHERE message_id = %L AND error_code = 'duplicate_handoff'$$, :'m'),
  $$VALUES ('handed_off', NULL::text, 'sent', 'duplicate_handoff',
            '{"provider_message_id": "SM-H2", "first_provider_message_id": "SM-H1"}'::jsonb)$$,
  'a handed_off event with error_code duplicate_handoff naming both SIDs');
SELECT is((SELECT provider_message_id FROM app.message_attempts WHERE id = :'a'), 'SM-H1', 'the attempt keeps the first SID');
SELECT is((SELECT provider_message_id FROM app.messages WHERE id = :'m'), 'SM-H1', 'the message keeps the first SID');
SELECT is((SELECT provider_status FROM app.message_attempts WHERE id = :'a'), 'queued',
  'the duplicate does not change the provider status');

-- The hand-off status, and hand-offs of attempts in other states.
SELECT pg_temp.new_message(:'t') AS m2 \gset
SELECT pg_temp.attempt_of(:'m2') AS a2 \gset
SELECT app.claim_attempt(:'a2') IS NOT NULL AS c \gset
SELECT is(app.record_handoff(:'a2', 'SM-H3', 'sent'), '{"status": "sent"}'::jsonb, 'a hand-off with status sent');
SELECT results_eq(format('SELECT provider_status, provider_status_rank FROM app.message_attempts WHERE id = %L', :'a2'),
  $$VALUES ('sent', 40)$$, 'records the provider status and its rank');
SELECT is(app.record_handoff(:'a2', 'SM-H3', 'accepted'), '{"status": "sent"}'::jsonb, 'a lower status later');
SELECT results_eq(format('SELECT provider_status, provider_status_rank FROM app.message_attempts WHERE id = %L', :'a2'),
  $$VALUES ('sent', 40)$$, 'does not lower the provider status');

SELECT pg_temp.new_message(:'t') AS m3 \gset
SELECT pg_temp.attempt_of(:'m3') AS a3 \gset
SELECT is(app.record_handoff(:'a3', 'SM-H4'), '{"status": "sent"}'::jsonb,
  'a hand-off of a never-claimed (pending) attempt is recorded too');
SELECT is(pg_temp.attempt_status(:'a3'), 'handed_off', 'the pending attempt is handed off');

SELECT pg_temp.new_message(:'t') AS m4 \gset
SELECT pg_temp.attempt_of(:'m4') AS a4 \gset
SELECT app.claim_attempt(:'a4') IS NOT NULL AS c \gset
SELECT app.record_send_error(:'a4', 1, '21211', 'refused', 400) IS NOT NULL AS e \gset
SELECT is(app.record_handoff(:'a4', 'SM-H5'), '{"status": "failed"}'::jsonb,
  'a late hand-off of a failed attempt is recorded: the message stays failed');
SELECT results_eq(format('SELECT status, provider_message_id FROM app.message_attempts WHERE id = %L', :'a4'),
  $$VALUES ('failed', 'SM-H5')$$, 'the failed attempt learns its SID but stays failed');
SELECT is(app.record_handoff(:'a4', 'SM-H5', 'delivered'), '{"status": "failed"}'::jsonb,
  'even a terminal status at a late hand-off: the first terminal status (failed) stays');
SELECT results_eq(format('SELECT status, provider_status, provider_status_rank, error_code FROM app.message_attempts WHERE id = %L', :'a4'),
  $$VALUES ('failed', NULL::text, 0, 'twilio:21211')$$, 'the failed attempt takes no provider status');

-- A terminal status at hand-off (e.g. found by reconciliation): the message ends at once.
SELECT pg_temp.new_message(:'t') AS m5 \gset
SELECT pg_temp.attempt_of(:'m5') AS a5 \gset
SELECT app.claim_attempt(:'a5') IS NOT NULL AS c \gset
SELECT is(app.record_handoff(:'a5', 'SM-H6', 'delivered'), '{"status": "delivered"}'::jsonb,
  'a hand-off with status delivered: the message is delivered');
SELECT results_eq(format($$SELECT status, provider_message_id, provider_status, provider_status_rank, handed_off_at
                           FROM app.message_attempts WHERE id = %L$$, :'a5'),
  $$VALUES ('delivered', 'SM-H6', 'delivered', 100, now())$$, 'the attempt is delivered, with its SID');
SELECT results_eq(format($$SELECT status, provider, provider_message_id, sent_at, completed_at, error_code
                           FROM app.messages WHERE id = %L$$, :'m5'),
  $$VALUES ('delivered', 'twilio', 'SM-H6', now(), now(), NULL::text)$$, 'the message is delivered (terminal), sent and completed');
SELECT results_eq(format($$SELECT event_type, status, provider_status, details FROM app.message_events
                           WHERE message_id = %L AND event_type NOT IN ('accepted', 'claimed') ORDER BY id$$, :'m5'),
  $$VALUES ('handed_off', 'sent', 'delivered', '{"provider_message_id": "SM-H6"}'::jsonb)$$,
  'one handed_off event carrying the provider status');
SELECT is(app.record_handoff(:'a5', 'SM-H6', 'undelivered'), '{"status": "delivered"}'::jsonb,
  'another terminal status later changes nothing: delivered stays');
SELECT results_eq(format('SELECT status, provider_status FROM app.message_attempts WHERE id = %L', :'a5'),
  $$VALUES ('delivered', 'delivered')$$, 'on the attempt either');

SELECT pg_temp.new_message(:'t') AS m6 \gset
SELECT pg_temp.attempt_of(:'m6') AS a6 \gset
SELECT app.claim_attempt(:'a6') IS NOT NULL AS c \gset
SELECT is(app.record_handoff(:'a6', 'SM-H7', 'canceled'), '{"status": "failed"}'::jsonb,
  'a hand-off with status canceled: the message failed');
SELECT results_eq(format($$SELECT a.status, a.provider_status, m.status, m.completed_at
                           FROM app.message_attempts a JOIN app.messages m ON m.id = a.message_id WHERE a.id = %L$$, :'a6'),
  $$VALUES ('failed', 'canceled', 'failed', now())$$, 'attempt and message failed (terminal)');

SELECT pg_temp.new_message(:'t') AS m7 \gset
SELECT pg_temp.attempt_of(:'m7') AS a7 \gset
SELECT app.claim_attempt(:'a7') IS NOT NULL AS c \gset
SELECT is(app.record_handoff(:'a7', 'SM-H8', 'no-such-status'), '{"status": "sent"}'::jsonb,
  'an unknown provider status at hand-off: sent');
SELECT results_eq(format('SELECT status, provider_message_id, provider_status, provider_status_rank FROM app.message_attempts WHERE id = %L', :'a7'),
  $$VALUES ('handed_off', 'SM-H8', NULL::text, 0)$$, 'handed off; the unknown status is not applied');
SELECT is(app.record_handoff(:'a7', 'SM-H8', 'read'), '{"status": "delivered"}'::jsonb,
  'the same hand-off again with read (implies delivered): the message is delivered');
SELECT ok(has_function_privilege('hermes_worker', 'app.record_handoff(uuid,text,text)', 'EXECUTE'),
  'the workers may record hand-offs');

SELECT * FROM finish();
ROLLBACK;
