-- Intake and the claim under the time rules: a message outside the recipient's quiet
-- hours is accepted as 'scheduled' with a job due at the opening (and deferred again
-- by a claim that comes too early); the claim records the contact that a later
-- message's cooldown sees; the same body to the same recipient within the tenant's
-- window is refused (duplicate_content); the tenant's default category applies.
BEGIN;
\ir ../../helpers.psql
SELECT plan(18);

SELECT (pg_temp.new_tenant('Schedule Co') -> 'tenant' ->> 'id') AS t \gset
-- A one-hour window that excludes now, in San Francisco: the message must wait for it.
SELECT CASE WHEN extract(hour FROM now() AT TIME ZONE 'America/Los_Angeles') < 14 THEN '15:00' ELSE '09:00' END AS ws \gset
SELECT pg_temp.set_policy(:'t', jsonb_build_object('quiet_start', :'ws', 'quiet_end', (:'ws'::time + interval '1 hour')::text))
  IS NULL AS p \gset
SELECT ((CASE WHEN (now() AT TIME ZONE 'America/Los_Angeles')::time < :'ws'::time
              THEN (now() AT TIME ZONE 'America/Los_Angeles')::date
              ELSE (now() AT TIME ZONE 'America/Los_Angeles')::date + 1 END + :'ws'::time)
        AT TIME ZONE 'America/Los_Angeles') AS opening \gset

SELECT private.submit_message(:'t', NULL, '{"to": "+14155550100", "body": "later", "category": "marketing"}') -> 'message' AS m \gset
SELECT results_eq(format($$SELECT %L::jsonb ->> 'status', (%L::jsonb ->> 'scheduled_at')::timestamptz IS NULL,
                                  %L::jsonb -> 'reasons' -> 0 ->> 'code'$$, :'m', :'m', :'m'),
  $$VALUES ('scheduled', true, 'quiet_hours')$$, 'outside the window: answered scheduled, reason quiet_hours');
SELECT results_eq(format($$SELECT status, scheduled_at, completed_at FROM app.messages WHERE id = %L$$, :'m'::jsonb ->> 'id'),
  format($$VALUES ('scheduled', %L::timestamptz, NULL::timestamptz)$$, :'opening'),
  'stored scheduled for the opening, not completed');
SELECT results_eq(format($$SELECT j.execute_after FROM pgqueuer.pgqueuer j JOIN app.message_attempts a
                             ON convert_from(j.payload, 'UTF8')::jsonb ->> 'attempt_id' = a.id::text
                            WHERE a.message_id = %L$$, :'m'::jsonb ->> 'id'),
  format($$VALUES (%L::timestamptz)$$, :'opening'), 'its send job is due at the opening');
SELECT results_eq(format($$SELECT event_type, status, details ->> 'decision', (details ->> 'next_allowed_at')::timestamptz
                             FROM app.message_events WHERE message_id = %L$$, :'m'::jsonb ->> 'id'),
  format($$VALUES ('deferred', 'scheduled', 'deferred', %L::timestamptz)$$, :'opening'),
  'a deferred event with the decision and the next allowed time');
SELECT is(private.submit_message(:'t', NULL, '{"to": "+14155550100", "body": "now"}') #>> '{message,status}', 'queued',
  'a message without a category takes the tenant''s default (transactional here): queued');
-- A claim before the opening defers again, with a new job due then.
SELECT pg_temp.attempt_of((:'m'::jsonb ->> 'id')::uuid) AS a \gset
SELECT is(app.claim_attempt(:'a') - 'attempt_id',
  jsonb_build_object('action', 'defer', 'reason', 'quiet_hours', 'next_allowed_at', :'opening'::timestamptz),
  'a claim before the opening: defer, quiet_hours');
SELECT results_eq(format($$SELECT status, claim_count FROM app.message_attempts WHERE id = %L$$, :'a'),
  $$VALUES ('pending', 0)$$, 'the attempt stays pending, unclaimed');
SELECT is((SELECT count(*)::int FROM pgqueuer.pgqueuer WHERE convert_from(payload, 'UTF8')::jsonb ->> 'attempt_id' = :'a'
             AND execute_after = :'opening'::timestamptz), 2, 'a second job is due at the opening (the first still waits)');
-- The tenant's window widened to the legal one: the claim now sends.
UPDATE app.tenant_policies SET quiet_start = '00:00', quiet_end = '23:59' WHERE tenant_id = :'t';
SELECT CASE WHEN extract(hour FROM now() AT TIME ZONE 'America/Los_Angeles') BETWEEN 8 AND 20 THEN 'send' ELSE 'defer' END AS expected \gset
SELECT is(app.claim_attempt(:'a') ->> 'action', :'expected', 'inside the legal window the claim sends (outside it, defers)');

-- Cooldowns: the claim records the contact; a later message to them in the window is refused.
SELECT (pg_temp.new_tenant('Outreach Co') -> 'tenant' ->> 'id') AS o \gset
UPDATE app.tenant_policies SET quiet_start = '00:00', quiet_end = '23:59' WHERE tenant_id = :'o';
-- (Quiet hours would defer marketing at night: a number of a zone where it is the
-- middle of the day now -- one of these five always is.)
SELECT n AS day_number FROM (VALUES (1, '+14155550100', 'America/Los_Angeles'), (2, '+12125550100', 'America/New_York'),
                                    (3, '+442079460958', 'Europe/London'), (4, '+81312345678', 'Asia/Tokyo'),
                                    (5, '+61212345678', 'Australia/Sydney')) z(o, n, zone)
 WHERE extract(hour FROM now() AT TIME ZONE z.zone) BETWEEN 10 AND 18 ORDER BY o LIMIT 1 \gset
SELECT private.submit_message(:'o', NULL, jsonb_build_object('to', :'day_number', 'body', 'first', 'category', 'marketing',
                                                             'vertical', 'solar')) #>> '{message,id}' AS o1 \gset
SELECT private.submit_message(:'o', NULL, jsonb_build_object('to', :'day_number', 'body', 'second', 'category', 'marketing',
                                                             'vertical', 'solar')) #>> '{message,id}' AS o2 \gset
SELECT is((SELECT array_agg(status ORDER BY body) FROM app.messages WHERE tenant_id = :'o'), ARRAY['queued', 'queued'],
  'two outreach messages to one recipient are both accepted (no contact yet)');
SELECT app.claim_attempts(ARRAY(SELECT id FROM app.message_attempts WHERE tenant_id = :'o' ORDER BY id)) AS claims \gset
SELECT is((SELECT count(*)::int FROM jsonb_array_elements(:'claims'::jsonb) d WHERE d ->> 'action' = 'send'), 1,
  'claimed together: one is sent');
SELECT is((SELECT count(*)::int FROM jsonb_array_elements(:'claims'::jsonb) d WHERE d ->> 'reason' = 'cooldown'), 1,
  'the other is refused: cooldown');
SELECT results_eq(format($$SELECT vertical, last_message_id IN (SELECT id FROM app.messages WHERE tenant_id = %L), source
                             FROM app.contact_history WHERE tenant_id = %L$$, :'o', :'o'),
  $$VALUES ('solar', true, 'send')$$, 'the claim recorded the contact (vertical solar, the sent message)');
SELECT is(private.submit_message(:'o', NULL, jsonb_build_object('to', :'day_number', 'body', 'third', 'category', 'marketing',
                                                                'vertical', 'roofing')) #>> '{message,reasons,0,code}',
  'cooldown', 'a later message in another vertical within 45 days is refused at acceptance');

-- Content dedup: same body, same recipient, within the window.
SELECT (pg_temp.new_tenant('Dedup Co') -> 'tenant' ->> 'id') AS d \gset
SELECT pg_temp.set_policy(:'d', '{"content_dedup_window": "10 minutes"}') IS NULL AS dp \gset
SELECT is(private.submit_message(:'d', NULL, '{"to": "+14155550300", "body": "Your code is 1234"}') #>> '{message,status}',
  'queued', 'a first message is accepted');
SELECT is(private.submit_message(:'d', NULL, '{"to": "+14155550300", "body": "Your code is 1234"}') #> '{message,reasons}',
  '[{"code": "duplicate_content", "window_seconds": 600}]'::jsonb, 'the same body again within 10 minutes: duplicate_content');
SELECT is(ARRAY(SELECT x #>> '{message,status}' FROM jsonb_array_elements(private.submit_messages(:'d', NULL,
            '[{"to": "+14155550300", "body": "other"}, {"to": "+14155550301", "body": "Your code is 1234"},
              {"to": "+14155550301", "body": "Your code is 1234"}]') -> 'results') x),
  ARRAY['queued', 'queued', 'rejected'], 'another body or recipient goes; twice in one batch, the second is refused');
UPDATE app.recent_contents SET last_at = last_at - interval '10 minutes' WHERE tenant_id = :'d';
SELECT is(private.submit_message(:'d', NULL, '{"to": "+14155550300", "body": "Your code is 1234"}') #>> '{message,status}',
  'queued', 'after the window it goes again');

SELECT * FROM finish();
ROLLBACK;
