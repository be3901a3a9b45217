-- private.record_handoffs_locked: records provider ids of attempts that have none (the
-- caller holds their locks): pending/claimed attempts become handed_off, the message
-- moves to sent (never backwards), a 'handed_off' event names the id and the path.
-- The first entry per attempt counts. Shared by app.record_handoffs ('worker') and
-- app.apply_receipts ('receipt'). Returns how many hand-offs were recorded.
BEGIN;
\ir ../../helpers.psql
SELECT plan(17);

SELECT (pg_temp.new_tenant('Locked Hand-off Co') -> 'tenant' ->> 'id') AS t \gset
SELECT pg_temp.handed_off(:'t', NULL) AS a1 \gset
SELECT message_id AS m1 FROM app.message_attempts WHERE id = :'a1' \gset
SELECT pg_temp.new_message(:'t') AS m2 \gset
SELECT pg_temp.attempt_of(:'m2') AS a2 \gset
SELECT pg_temp.handed_off(:'t', NULL) AS a3 \gset
UPDATE app.message_attempts SET updated_at = now() - interval '1 hour' WHERE id IN (:'a1', :'a2', :'a3');
UPDATE app.messages SET updated_at = now() - interval '1 hour';
CREATE FUNCTION pg_temp.h(p_attempt uuid, p_sid text) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('attempt_id', p_attempt, 'provider_message_id', p_sid)
$$;

SELECT lives_ok($$SELECT private.record_handoffs_locked('[]', 'worker')$$, 'an empty batch runs (and records nothing)');
SELECT is(private.record_handoffs_locked('[]', 'worker'), 0::bigint, 'an empty batch: 0');

SELECT max(id) AS last_event FROM app.message_events \gset
SELECT pg_temp.counts() AS before \gset
SELECT is(private.record_handoffs_locked(jsonb_build_array(pg_temp.h(:'a1', 'SM-1a'), pg_temp.h(:'a2', 'SM-2'),
                                                           pg_temp.h(:'a1', 'SM-1b'), pg_temp.h(private.uuid7(), 'SM-x')),
                                         'worker'),
  2::bigint, 'a claimed and a pending attempt (one listed twice) and an unknown one: two hand-offs recorded');
SELECT results_eq(format($$SELECT id, status, provider_message_id, handed_off_at, updated_at FROM app.message_attempts
                           WHERE id IN (%L, %L) ORDER BY provider_message_id$$, :'a1', :'a2'),
  format($$VALUES (%L::uuid, 'handed_off', 'SM-1a', now(), now()), (%L::uuid, 'handed_off', 'SM-2', now(), now())$$, :'a1', :'a2'),
  'both handed off, now; the first entry of an attempt counts (SM-1a, not SM-1b)');
SELECT results_eq(format($$SELECT id, status, provider, provider_message_id, sent_at, updated_at, completed_at FROM app.messages
                           WHERE id IN (%L, %L) ORDER BY provider_message_id$$, :'m1', :'m2'),
  format($$VALUES (%L::uuid, 'sent', 'twilio', 'SM-1a', now(), now(), NULL::timestamptz),
                  (%L::uuid, 'sent', 'twilio', 'SM-2', now(), now(), NULL::timestamptz)$$, :'m1', :'m2'),
  'their messages (sending, queued) are sent, with provider and provider id');
SELECT set_eq(format($$SELECT attempt_id, event_type, status, provider_status, error_code, details FROM app.message_events
                        WHERE id > %s$$, :last_event),
  format($$VALUES (%L::uuid, 'handed_off', 'sent', NULL::text, NULL::text, '{"provider_message_id": "SM-1a", "via": "worker"}'::jsonb),
                  (%L::uuid, 'handed_off', 'sent', NULL, NULL, '{"provider_message_id": "SM-2", "via": "worker"}'::jsonb)$$,
         :'a1', :'a2'),
  'one handed_off event each, naming the provider id and the path');
SELECT is(pg_temp.counts() - 'events', :'before'::jsonb - 'events',
  'no other row: no receipt, no job (the status is the caller''s business)');
SELECT results_eq(format('SELECT status, provider_message_id, updated_at FROM app.message_attempts WHERE id = %L', :'a3'),
  $$VALUES ('claimed', NULL::text, now() - interval '1 hour')$$, 'an attempt not listed is untouched');

-- Attempts that already have a provider id: nothing.
SELECT pg_temp.counts() AS before \gset
SELECT is(private.record_handoffs_locked(jsonb_build_array(pg_temp.h(:'a1', 'SM-1a'), pg_temp.h(:'a2', 'SM-other')), 'worker'),
  0::bigint, 'attempts with a provider id, the same or another: none recorded');
SELECT is(pg_temp.counts(), :'before'::jsonb, 'and nothing written');
SELECT is((SELECT array_agg(provider_message_id ORDER BY provider_message_id) FROM app.message_attempts WHERE id IN (:'a1', :'a2')),
  ARRAY['SM-1a', 'SM-2'], 'their provider ids stay');

-- A terminal attempt without provider id learns it, and stays terminal.
SELECT app.record_send_error(:'a3', 1, '21211', 'invalid To', 400) IS NOT NULL AS e \gset
SELECT is(private.record_handoffs_locked(jsonb_build_array(pg_temp.h(:'a3', 'SM-3')), 'receipt'), 1::bigint,
  'a failed attempt without provider id: recorded');
SELECT results_eq(format($$SELECT a.status, a.provider_message_id, m.status, m.provider_message_id, m.completed_at IS NOT NULL
                           FROM app.message_attempts a JOIN app.messages m ON m.id = a.message_id WHERE a.id = %L$$, :'a3'),
  $$VALUES ('failed', 'SM-3', 'failed', 'SM-3', true)$$, 'attempt and message learn the provider id but stay failed');
SELECT results_eq(format($$SELECT status, details FROM app.message_events WHERE attempt_id = %L AND event_type = 'handed_off'$$, :'a3'),
  $$VALUES ('failed', '{"provider_message_id": "SM-3", "via": "receipt"}'::jsonb)$$,
  'the event records the message status after it (failed) and the path (receipt)');

-- A sent message is not moved or touched.
SELECT pg_temp.handed_off(:'t', NULL) AS a4 \gset
SELECT message_id AS m4 FROM app.message_attempts WHERE id = :'a4' \gset
UPDATE app.messages SET status = 'sent', sent_at = now() - interval '1 minute', updated_at = now() - interval '1 minute'
 WHERE id = :'m4';
SELECT is(private.record_handoffs_locked(jsonb_build_array(pg_temp.h(:'a4', 'SM-4')), 'worker'), 1::bigint, 'recorded');
SELECT results_eq(format('SELECT status, provider_message_id, sent_at, updated_at FROM app.messages WHERE id = %L', :'m4'),
  $$VALUES ('sent', 'SM-4', now() - interval '1 minute', now() - interval '1 minute')$$,
  'an already sent message keeps its status and times, and learns the provider id');

SELECT ok((SELECT NOT prosecdef FROM pg_proc WHERE oid = 'private.record_handoffs_locked(jsonb,text)'::regprocedure)
          AND NOT has_function_privilege('hermes_api', 'private.record_handoffs_locked(jsonb,text)', 'EXECUTE')
          AND NOT has_function_privilege('hermes_worker', 'private.record_handoffs_locked(jsonb,text)', 'EXECUTE'),
  'not SECURITY DEFINER, and no client role may call it');

SELECT * FROM finish();
ROLLBACK;
