-- app.record_receipt: provider status callbacks: deduplicated per (SID, status),
-- monotonic, first terminal status wins, resolves hand-offs never recorded.
BEGIN;
\ir ../../helpers.psql
SELECT plan(48);

SELECT (pg_temp.new_tenant('Receipt Co') -> 'tenant' ->> 'id') AS t \gset
-- Message n: submitted, claimed (send) and, unless said otherwise, handed off as SM-n.
CREATE FUNCTION pg_temp.sent_message(p_tenant uuid, p_sid text) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
  v_m uuid := pg_temp.new_message(p_tenant);
  v_a uuid := pg_temp.attempt_of(v_m);
BEGIN
  PERFORM app.claim_attempt(v_a);
  IF p_sid IS NOT NULL THEN
    PERFORM app.record_handoff(v_a, p_sid);
  END IF;
  RETURN v_a;
END
$$;
SELECT pg_temp.sent_message(:'t', 'SM-1') AS a1 \gset
SELECT message_id AS m1 FROM app.message_attempts WHERE id = :'a1' \gset

-- Refusals.
SELECT is(pg_temp.problem(format($$SELECT app.record_receipt('nexmo', %L, 'SM-1', 'delivered')$$, :'a1')),
  'HM422 unknown_provider', 'an unknown provider: HM422 unknown_provider');
SELECT is(pg_temp.problem(format($$SELECT app.record_receipt(NULL, %L, 'SM-1', 'delivered')$$, :'a1')),
  'HM422 unknown_provider', 'no provider: HM422 unknown_provider');
SELECT is(pg_temp.problem(format($$SELECT app.record_receipt('twilio', %L, NULL, 'delivered')$$, :'a1')),
  'HM422 invalid_receipt', 'no SID: HM422 invalid_receipt');
SELECT is(pg_temp.problem(format($$SELECT app.record_receipt('twilio', %L, 'SM-1', NULL)$$, :'a1')),
  'HM422 invalid_receipt', 'no status: HM422 invalid_receipt');
SELECT is(pg_temp.problem(format($$SELECT app.record_receipt('twilio', %L, 'SM-1', 'delivered')$$, private.uuid7())),
  'HM404 attempt_not_found', 'an unknown attempt: HM404 attempt_not_found');

-- The normal life: sent, delivered.
SELECT is(app.record_receipt('twilio', :'a1', 'SM-1', 'sent', NULL, NULL, '{"MessageStatus": "sent"}'),
  '{"duplicate": false, "applied": true, "message_status": "sent"}'::jsonb, 'sent: applied');
SELECT results_eq(format('SELECT status, provider_status, provider_status_rank FROM app.message_attempts WHERE id = %L', :'a1'),
  $$VALUES ('handed_off', 'sent', 40)$$, 'the attempt records the provider status');
SELECT results_eq(format($$SELECT provider_status, dedupe_key, details FROM app.message_events
                           WHERE message_id = %L AND event_type = 'provider_status'$$, :'m1'),
  $$VALUES ('sent', 'twilio:SM-1:sent',
            '{"provider_message_id": "SM-1", "known_status": true, "payload": {"MessageStatus": "sent"}}'::jsonb)$$,
  'a provider_status event, deduplicated on twilio:SID:status, with the payload');
SELECT is(app.record_receipt('twilio', :'a1', 'SM-1', 'sent'),
  '{"duplicate": true, "applied": false, "message_status": "sent"}'::jsonb, 'the same (SID, status) again: duplicate');
SELECT is((SELECT count(*)::int FROM app.message_events WHERE message_id = :'m1' AND event_type = 'provider_status'), 1,
  'stored once');
SELECT is(app.record_receipt('twilio', :'a1', 'SM-1', 'delivered'),
  '{"duplicate": false, "applied": true, "message_status": "delivered"}'::jsonb, 'delivered: applied');
SELECT results_eq(format('SELECT status, completed_at FROM app.messages WHERE id = %L', :'m1'),
  $$VALUES ('delivered', now())$$, 'the message is delivered (terminal)');
SELECT is(pg_temp.attempt_status(:'a1'), 'delivered', 'the attempt is delivered');
SELECT is(app.record_receipt('twilio', :'a1', 'SM-1', 'delivered'),
  '{"duplicate": true, "applied": false, "message_status": "delivered"}'::jsonb, 'delivered again: duplicate');

-- First terminal status wins.
SELECT is(app.record_receipt('twilio', :'a1', 'SM-1', 'undelivered', '30003', 'Unreachable'),
  '{"duplicate": false, "applied": false, "message_status": "delivered"}'::jsonb,
  'undelivered after delivered: logged, not applied');
SELECT results_eq(format('SELECT status, error_code, error_message FROM app.messages WHERE id = %L', :'m1'),
  $$VALUES ('delivered', NULL::text, NULL::text)$$, 'the message stays delivered, without error');
SELECT results_eq(format('SELECT status, provider_status, error_code FROM app.message_attempts WHERE id = %L', :'a1'),
  $$VALUES ('delivered', 'delivered', NULL::text)$$, 'the attempt stays delivered');
SELECT is(app.record_receipt('twilio', :'a1', 'SM-1', 'failed') ->> 'applied', 'false', 'failed after delivered: not applied');
SELECT is(app.record_receipt('twilio', :'a1', 'SM-1', 'read') ->> 'applied', 'false',
  'read after delivered: not applied (the attempt is terminal)');

-- Out of order: delivered arrives before sent.
SELECT pg_temp.sent_message(:'t', 'SM-2') AS a2 \gset
SELECT message_id AS m2 FROM app.message_attempts WHERE id = :'a2' \gset
SELECT is(app.record_receipt('twilio', :'a2', 'SM-2', 'delivered') ->> 'message_status', 'delivered', 'delivered first');
SELECT is(app.record_receipt('twilio', :'a2', 'SM-2', 'sent'),
  '{"duplicate": false, "applied": false, "message_status": "delivered"}'::jsonb, 'sent after delivered: not applied');
SELECT is(app.record_receipt('twilio', :'a2', 'SM-2', 'queued') ->> 'applied', 'false', 'queued after delivered: not applied');
SELECT results_eq(format('SELECT provider_status, provider_status_rank FROM app.message_attempts WHERE id = %L', :'a2'),
  $$VALUES ('delivered', 100)$$, 'the provider status does not regress');
SELECT is(pg_temp.message_status(:'m2'), 'delivered', 'nor does the message');
SELECT is((SELECT count(*)::int FROM app.message_events WHERE message_id = :'m2' AND event_type = 'provider_status'), 3,
  'every receipt is in the ledger');

-- Before terminal: lower ranks do not apply, higher ones do.
SELECT pg_temp.sent_message(:'t', 'SM-3') AS a3 \gset
SELECT message_id AS m3 FROM app.message_attempts WHERE id = :'a3' \gset
SELECT is(app.record_receipt('twilio', :'a3', 'SM-3', 'sent') ->> 'applied', 'true', 'sent applies');
SELECT is(app.record_receipt('twilio', :'a3', 'SM-3', 'sending') ->> 'applied', 'false', 'sending after sent does not');
SELECT is(app.record_receipt('twilio', :'a3', 'SM-3', 'undelivered', '30003', 'Unreachable destination handset'),
  '{"duplicate": false, "applied": true, "message_status": "undelivered"}'::jsonb, 'undelivered applies');
SELECT results_eq(format('SELECT status, error_code, error_message FROM app.messages WHERE id = %L', :'m3'),
  $$VALUES ('undelivered', 'twilio:30003', 'Unreachable destination handset')$$,
  'the message is undelivered with error_code twilio:30003');
SELECT results_eq(format('SELECT status, error_code FROM app.message_attempts WHERE id = %L', :'a3'),
  $$VALUES ('undelivered', 'twilio:30003')$$, 'and so is the attempt');
SELECT is(app.record_receipt('twilio', :'a3', 'SM-3', 'delivered') ->> 'applied', 'false',
  'delivered after undelivered: not applied');

-- The receipt arrives before the hand-off was recorded (the worker died): it resolves it.
SELECT pg_temp.sent_message(:'t', NULL) AS a4 \gset
SELECT message_id AS m4 FROM app.message_attempts WHERE id = :'a4' \gset
SELECT is(app.record_receipt('twilio', :'a4', 'SM-4', 'sent'),
  '{"duplicate": false, "applied": true, "message_status": "sent"}'::jsonb, 'a receipt for an attempt without SID applies');
SELECT results_eq(format('SELECT status, provider_message_id, handed_off_at FROM app.message_attempts WHERE id = %L', :'a4'),
  $$VALUES ('handed_off', 'SM-4', now())$$, 'the attempt is handed off with the receipt''s SID');
SELECT is(pg_temp.events_of(:'m4'), ARRAY['accepted', 'claimed', 'provider_status', 'handed_off'],
  'the receipt and the hand-off it implies are in the ledger');
SELECT is(app.claim_attempt(:'a4'), '{"action": "skip", "reason": "attempt_handed_off"}'::jsonb,
  'a later claim skips it: no resend');
SELECT is(app.reconcile_attempt(:'a4', 1, '[]'), '{"action": "skip", "reason": "attempt_handed_off"}'::jsonb,
  'and a reconcile too');
SELECT is(app.record_handoff(:'a4', 'SM-4'), '{"status": "sent"}'::jsonb, 'the worker''s late hand-off is idempotent');

SELECT pg_temp.sent_message(:'t', NULL) AS a5 \gset
SELECT is(app.record_receipt('twilio', :'a5', 'SM-5', 'delivered') ->> 'message_status', 'delivered',
  'a terminal receipt before the hand-off: delivered at once');
SELECT results_eq(format('SELECT status, provider_message_id FROM app.message_attempts WHERE id = %L', :'a5'),
  $$VALUES ('delivered', 'SM-5')$$, 'the attempt is delivered with the SID');

-- A SID that is not the attempt's.
SELECT pg_temp.sent_message(:'t', 'SM-6') AS a6 \gset
SELECT message_id AS m6 FROM app.message_attempts WHERE id = :'a6' \gset
SELECT is(app.record_receipt('twilio', :'a6', 'SM-other', 'failed'),
  '{"duplicate": false, "applied": false, "reason": "provider_message_id_mismatch"}'::jsonb,
  'a receipt with another SID: not applied, provider_message_id_mismatch');
SELECT results_eq(format('SELECT status, provider_message_id FROM app.messages WHERE id = %L', :'m6'),
  $$VALUES ('sent', 'SM-6')$$, 'the message is unchanged');
SELECT results_eq(format($$SELECT error_code, dedupe_key FROM app.message_events
                           WHERE message_id = %L AND event_type = 'provider_status'$$, :'m6'),
  $$VALUES ('provider_message_id_mismatch', 'twilio:SM-other:failed')$$, 'the mismatch is in the ledger');

-- Statuses Hermes does not know: logged, not applied.
SELECT is(app.record_receipt('twilio', :'a6', 'SM-6', 'partially_delivered'),
  '{"duplicate": false, "applied": false, "message_status": "sent"}'::jsonb, 'an unknown status: not applied');
SELECT is((SELECT details ->> 'known_status' FROM app.message_events WHERE dedupe_key = 'twilio:SM-6:partially_delivered'),
  'false', 'logged with known_status false');
SELECT is(app.record_receipt('twilio', :'a6', 'SM-6', 'canceled') ->> 'message_status', 'failed',
  'canceled: the message failed');

-- read (WhatsApp) can come before delivered: it implies delivered and ends the message.
SELECT pg_temp.sent_message(:'t', 'SM-7') AS a7 \gset
SELECT message_id AS m7 FROM app.message_attempts WHERE id = :'a7' \gset
SELECT is(app.record_receipt('twilio', :'a7', 'SM-7', 'read') ->> 'message_status', 'delivered',
  'read before delivered: the message is delivered');
SELECT results_eq(format('SELECT m.status, a.status, m.completed_at IS NOT NULL FROM app.messages m
                            JOIN app.message_attempts a ON a.message_id = m.id WHERE m.id = %L', :'m7'),
  $$VALUES ('delivered', 'delivered', true)$$, 'message and attempt are terminal, delivered');
SELECT is(app.record_receipt('twilio', :'a7', 'SM-7', 'delivered') ->> 'message_status', 'delivered',
  'the late delivered changes nothing');

SELECT * FROM finish();
ROLLBACK;
