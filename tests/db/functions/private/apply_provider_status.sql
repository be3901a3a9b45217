-- private.apply_provider_status: a provider status applies to an attempt only if it
-- ranks higher than the attempt's; a terminal one (rank >= 100) ends the attempt and
-- the message, and the first terminal status stays. Shared by record_handoff and
-- record_receipt. Returns {applied, message_status}; writes no event.
BEGIN;
\ir ../../helpers.psql
SELECT plan(38);

SELECT (pg_temp.new_tenant('Apply Co') -> 'tenant' ->> 'id') AS t \gset
-- Message n: submitted, claimed and handed off as p_sid (provider status queued, rank 20).
CREATE FUNCTION pg_temp.handed_off(p_tenant uuid, p_sid text) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
  v_a uuid := pg_temp.attempt_of(pg_temp.new_message(p_tenant));
BEGIN
  PERFORM app.claim_attempt(v_a);
  IF p_sid IS NOT NULL THEN
    PERFORM app.record_handoff(v_a, p_sid);
  END IF;
  RETURN v_a;
END
$$;
CREATE FUNCTION pg_temp.state(p_attempt uuid)
RETURNS TABLE (a_status text, provider_status text, rank int, a_error text, a_message text,
               m_status text, m_error text, m_message text, completed_at timestamptz)
LANGUAGE sql AS $$
  SELECT a.status, a.provider_status, a.provider_status_rank, a.error_code, a.error_message,
         m.status, m.error_code, m.error_message, m.completed_at
    FROM app.message_attempts a JOIN app.messages m ON m.id = a.message_id AND m.created_at = a.message_created_at
   WHERE a.id = p_attempt
$$;

SELECT pg_temp.handed_off(:'t', 'SM-1') AS a1 \gset
SELECT message_id AS m1 FROM app.message_attempts WHERE id = :'a1' \gset
SELECT results_eq(format('SELECT * FROM pg_temp.state(%L)', :'a1'),
  $$VALUES ('handed_off', 'queued', 20, NULL::text, NULL::text, 'sent', NULL::text, NULL::text, NULL::timestamptz)$$,
  'set-up: handed off, provider status queued (rank 20), message sent');
UPDATE app.message_attempts SET updated_at = now() - interval '1 hour' WHERE id = :'a1';
SELECT pg_temp.counts() AS before \gset

-- Not applied: unknown, lower or equal rank.
SELECT is(private.apply_provider_status(:'a1', 'no-such-status'),
  '{"applied": false, "message_status": "sent"}'::jsonb, 'an unknown status: not applied');
SELECT is(private.apply_provider_status(:'a1', NULL),
  '{"applied": false, "message_status": "sent"}'::jsonb, 'a NULL status: not applied');
SELECT is(private.apply_provider_status(:'a1', 'accepted'),
  '{"applied": false, "message_status": "sent"}'::jsonb, 'a lower rank (accepted, 10): not applied');
SELECT is(private.apply_provider_status(:'a1', 'queued', 'twilio:1', 'x'),
  '{"applied": false, "message_status": "sent"}'::jsonb, 'the same rank (queued, 20): not applied');
SELECT results_eq(format('SELECT *, (SELECT updated_at FROM app.message_attempts WHERE id = %L) FROM pg_temp.state(%L)', :'a1', :'a1'),
  $$VALUES ('handed_off', 'queued', 20, NULL::text, NULL::text, 'sent', NULL::text, NULL::text, NULL::timestamptz,
            now() - interval '1 hour')$$,
  'none of them touched the attempt (not even its error or updated_at) or the message');

-- Applied: a higher non-terminal rank.
SELECT is(private.apply_provider_status(:'a1', 'sent'),
  '{"applied": true, "message_status": "sent"}'::jsonb, 'a higher rank (sent, 40): applied, the message stays sent');
SELECT results_eq(format('SELECT *, (SELECT updated_at FROM app.message_attempts WHERE id = %L) FROM pg_temp.state(%L)', :'a1', :'a1'),
  $$VALUES ('handed_off', 'sent', 40, NULL::text, NULL::text, 'sent', NULL::text, NULL::text, NULL::timestamptz, now())$$,
  'the attempt records status and rank and stays handed off');
SELECT is(private.apply_provider_status(:'a1', 'sending'),
  '{"applied": false, "message_status": "sent"}'::jsonb, 'then a lower one (sending, 30): not applied');
SELECT is((SELECT provider_status FROM app.message_attempts WHERE id = :'a1'), 'sent', 'the status never goes back');

-- Applied: a terminal status ends attempt and message.
SELECT is(private.apply_provider_status(:'a1', 'undelivered', 'twilio:30003', 'Unreachable destination handset'),
  '{"applied": true, "message_status": "undelivered"}'::jsonb, 'undelivered: applied, the message is undelivered');
SELECT results_eq(format('SELECT * FROM pg_temp.state(%L)', :'a1'),
  $$VALUES ('undelivered', 'undelivered', 100, 'twilio:30003', 'Unreachable destination handset',
            'undelivered', 'twilio:30003', 'Unreachable destination handset', now())$$,
  'attempt and message undelivered (terminal) with the error code and message');
SELECT is(private.apply_provider_status(:'a1', 'delivered'),
  '{"applied": false, "message_status": "undelivered"}'::jsonb, 'another terminal status later: not applied');
SELECT is(private.apply_provider_status(:'a1', 'read'),
  '{"applied": false, "message_status": "undelivered"}'::jsonb, 'not even a higher rank (read, 110): the first terminal stays');
SELECT results_eq(format('SELECT * FROM pg_temp.state(%L)', :'a1'),
  $$VALUES ('undelivered', 'undelivered', 100, 'twilio:30003', 'Unreachable destination handset',
            'undelivered', 'twilio:30003', 'Unreachable destination handset', now())$$, 'nothing changed');
SELECT is((pg_temp.counts() - 'attempts') - 'messages', (:'before'::jsonb - 'attempts') - 'messages',
  'no event, job or other row is written');
SELECT is(pg_temp.events_of(:'m1'), ARRAY['accepted', 'claimed', 'handed_off'], 'the caller logs the events, not this');

-- Each terminal Twilio status, and what it means for the message.
CREATE TEMP TABLE terminal (provider_status text, result jsonb, a_status text, rank int, m_status text,
                            completed_at timestamptz);
SELECT set_config('hermes_test.tenant', :'t', true) IS NOT NULL AS s \gset
DO $$
DECLARE
  v_a uuid;
  v_status text;
  v_result jsonb;
BEGIN
  FOREACH v_status IN ARRAY ARRAY['delivered', 'undelivered', 'failed', 'canceled', 'read'] LOOP
    v_a := pg_temp.handed_off(current_setting('hermes_test.tenant')::uuid, 'SM-T-' || v_status);
    v_result := private.apply_provider_status(v_a, v_status);
    INSERT INTO terminal
    SELECT v_status, v_result, s.a_status, s.rank, s.m_status, s.completed_at
      FROM pg_temp.state(v_a) s;
  END LOOP;
END
$$;
SELECT results_eq('SELECT provider_status, result, a_status, rank, m_status, completed_at FROM terminal ORDER BY provider_status',
  $$VALUES ('canceled', '{"applied": true, "message_status": "failed"}'::jsonb, 'failed', 100, 'failed', now()),
           ('delivered', '{"applied": true, "message_status": "delivered"}'::jsonb, 'delivered', 100, 'delivered', now()),
           ('failed', '{"applied": true, "message_status": "failed"}'::jsonb, 'failed', 100, 'failed', now()),
           ('read', '{"applied": true, "message_status": "delivered"}'::jsonb, 'delivered', 110, 'delivered', now()),
           ('undelivered', '{"applied": true, "message_status": "undelivered"}'::jsonb, 'undelivered', 100, 'undelivered', now())$$,
  'delivered, undelivered, failed, canceled (-> failed) and read (-> delivered) each end attempt and message');

-- Errors: kept unless a new one is given; an empty message is no message.
SELECT pg_temp.handed_off(:'t', 'SM-2') AS a2 \gset
SELECT is(private.apply_provider_status(:'a2', 'sending', 'twilio:30001', 'Queue overflow'),
  '{"applied": true, "message_status": "sent"}'::jsonb, 'a non-terminal status with an error: applied');
SELECT results_eq(format('SELECT a_status, provider_status, a_error, a_message, m_status, m_error, m_message FROM pg_temp.state(%L)', :'a2'),
  $$VALUES ('handed_off', 'sending', 'twilio:30001', 'Queue overflow', 'sent', NULL::text, NULL::text)$$,
  'the attempt keeps the error; the message (not advanced) does not get it');
SELECT is(private.apply_provider_status(:'a2', 'sent', NULL, ''),
  '{"applied": true, "message_status": "sent"}'::jsonb, 'sent without an error');
SELECT results_eq(format('SELECT provider_status, a_error, a_message FROM pg_temp.state(%L)', :'a2'),
  $$VALUES ('sent', 'twilio:30001', 'Queue overflow')$$, 'no error code and an empty message erase nothing');
SELECT is(private.apply_provider_status(:'a2', 'delivered'),
  '{"applied": true, "message_status": "delivered"}'::jsonb, 'delivered');
SELECT results_eq(format('SELECT a_status, a_error, m_status, m_error, m_message, completed_at FROM pg_temp.state(%L)', :'a2'),
  $$VALUES ('delivered', 'twilio:30001', 'delivered', NULL::text, NULL::text, now())$$,
  'delivered; the message takes no error it was not given');

-- An attempt not handed off yet: a status proves the provider has it.
SELECT pg_temp.handed_off(:'t', NULL) AS a3 \gset
SELECT message_id AS m3 FROM app.message_attempts WHERE id = :'a3' \gset
SELECT is(pg_temp.attempt_status(:'a3'), 'claimed', 'set-up: a claimed attempt');
SELECT is(private.apply_provider_status(:'a3', 'queued'),
  '{"applied": true, "message_status": "sent"}'::jsonb, 'queued on a claimed attempt: applied, the message is sent');
SELECT results_eq(format('SELECT a_status, provider_status, rank, m_status, completed_at FROM pg_temp.state(%L)', :'a3'),
  $$VALUES ('handed_off', 'queued', 20, 'sent', NULL::timestamptz)$$, 'the attempt is handed off');
SELECT pg_temp.attempt_of(pg_temp.new_message(:'t')) AS a4 \gset
SELECT is(private.apply_provider_status(:'a4', 'delivered'),
  '{"applied": true, "message_status": "delivered"}'::jsonb, 'delivered on a pending attempt: applied');
SELECT results_eq(format('SELECT a_status, provider_status, rank, m_status, completed_at FROM pg_temp.state(%L)', :'a4'),
  $$VALUES ('delivered', 'delivered', 100, 'delivered', now())$$, 'attempt and message delivered');

-- Attempts that already ended take no provider status.
SELECT pg_temp.handed_off(:'t', NULL) AS a5 \gset
SELECT app.record_send_error(:'a5', 1, '21211', 'invalid To', 400) IS NOT NULL AS e \gset
SELECT is(private.apply_provider_status(:'a5', 'delivered'),
  '{"applied": false, "message_status": "failed"}'::jsonb, 'a failed attempt: not applied');
SELECT results_eq(format('SELECT a_status, provider_status, rank, a_error, m_status, m_error FROM pg_temp.state(%L)', :'a5'),
  $$VALUES ('failed', NULL::text, 0, 'twilio:21211', 'failed', 'twilio:21211')$$, 'it stays failed');
SELECT pg_temp.attempt_of(pg_temp.new_message(:'t')) AS a6 \gset
UPDATE app.tenants SET status = 'suspended' WHERE id = :'t';
SELECT app.claim_attempt(:'a6') IS NOT NULL AS c \gset
UPDATE app.tenants SET status = 'active' WHERE id = :'t';
SELECT is(pg_temp.attempt_status(:'a6'), 'rejected', 'set-up: a rejected attempt');
SELECT is(private.apply_provider_status(:'a6', 'read'),
  '{"applied": false, "message_status": "rejected"}'::jsonb, 'a rejected attempt: not applied');
SELECT is((SELECT provider_status_rank FROM app.message_attempts WHERE id = :'a6'), 0, 'it stays rejected, rank 0');

-- Same end state whichever way the status arrives: hand-off, receipt, or directly.
SELECT pg_temp.handed_off(:'t', NULL) AS b1 \gset
SELECT pg_temp.handed_off(:'t', 'SM-B2') AS b2 \gset
SELECT pg_temp.handed_off(:'t', 'SM-B3') AS b3 \gset
SELECT app.record_handoff(:'b1', 'SM-B1', 'delivered') IS NOT NULL AS x \gset
SELECT app.record_receipt('twilio', :'b2', 'SM-B2', 'delivered') IS NOT NULL AS x \gset
SELECT private.apply_provider_status(:'b3', 'delivered') IS NOT NULL AS x \gset
SELECT results_eq(format($$SELECT DISTINCT a_status, provider_status, rank, m_status, completed_at
                           FROM (VALUES (%L::uuid), (%L), (%L)) v(a), pg_temp.state(v.a)$$, :'b1', :'b2', :'b3'),
  $$VALUES ('delivered', 'delivered', 100, 'delivered', now())$$,
  'record_handoff, record_receipt and a direct call reach the same state');

SELECT is((SELECT provolatile::text || ':' || prosecdef::text FROM pg_proc
            WHERE oid = 'private.apply_provider_status(uuid,text,text,text)'::regprocedure), 'v:false',
  'VOLATILE, not SECURITY DEFINER (runs with its callers'' rights)');
SELECT ok(NOT has_function_privilege('hermes_worker', 'private.apply_provider_status(uuid,text,text,text)', 'EXECUTE')
          AND NOT has_function_privilege('hermes_api', 'private.apply_provider_status(uuid,text,text,text)', 'EXECUTE'),
  'no client role may call it directly');

SELECT is(pg_temp.problem(format('SELECT private.apply_provider_status(%L, %L)', private.uuid7(), 'delivered')),
  'HM404 attempt_not_found', 'an unknown attempt: HM404 attempt_not_found');

SELECT * FROM finish();
ROLLBACK;
