-- The cascade: intake plans every step (private.accept_messages), the end of a step
-- moves the message on (private.settle_attempts, from every place a step can end), a
-- timer expires a silent step (app.expire_steps), a delivery ends the message and
-- cancels what is left, a late or correcting receipt never reopens it.
BEGIN;
\ir ../../helpers.psql
SELECT plan(37);

SELECT (pg_temp.new_tenant('Cascade Co') -> 'tenant' ->> 'id') AS t \gset
UPDATE app.tenants SET default_email_from = 'Cascade <hi@cascade.example>' WHERE id = :'t';
SELECT pg_temp.new_sender(:'t', 'email', 'hi@cascade.example') AS email_sender \gset
SELECT pg_temp.set_policy(:'t', '{"default_category": "transactional", "content_dedup_window": "0"}');

CREATE FUNCTION pg_temp.submit(p_tenant uuid, p_request jsonb) RETURNS jsonb LANGUAGE sql AS $$
  SELECT private.submit_message(p_tenant, NULL, p_request) -> 'message'
$$;
CREATE FUNCTION pg_temp.steps(p_message uuid) RETURNS TABLE (step int, channel text, status text, "to" text)
LANGUAGE sql AS $$
  SELECT attempt_no, channel, status, to_address FROM app.message_attempts
   WHERE message_id = p_message ORDER BY attempt_no
$$;
CREATE FUNCTION pg_temp.attempt(p_message uuid, p_step int) RETURNS uuid LANGUAGE sql AS $$
  SELECT id FROM app.message_attempts WHERE message_id = p_message AND attempt_no = p_step
$$;
CREATE FUNCTION pg_temp.jobs(p_attempt uuid) RETURNS text[] LANGUAGE sql AS $$
  SELECT coalesce(array_agg(entrypoint ORDER BY id), '{}') FROM pgqueuer.pgqueuer
   WHERE convert_from(payload, 'UTF8')::jsonb ->> 'attempt_id' = p_attempt::text
$$;
-- Claim a step and hand it off (as a worker would), with the provider's answer.
CREATE FUNCTION pg_temp.hand_off(p_attempt uuid, p_sid text, p_status text) RETURNS void LANGUAGE sql AS $$
  SELECT app.claim_attempt(p_attempt);
  SELECT app.record_handoff(p_attempt, p_sid, p_status);
  SELECT app.apply_receipts();
$$;
CREATE FUNCTION pg_temp.receipt(p_provider text, p_attempt uuid, p_sid text, p_status text, p_code text DEFAULT NULL)
RETURNS void LANGUAGE sql AS $$
  SELECT app.record_receipt(p_provider, p_attempt, p_sid, p_status, p_code);
  SELECT app.apply_receipts();
$$;

-- Intake: every step is an attempt; the first goes, the others wait.
SELECT pg_temp.submit(:'t', '{"channels": [
  {"channel": "email", "to": "ada@example.com", "subject": "Hi", "body": "Hello"},
  {"channel": "sms", "to": "+14155550123", "body": "Hello", "timeout_seconds": 30},
  {"channel": "push", "to": "fcm-token-0123456789abcdef", "title": "Hi", "body": "Hello"}]}') AS m1j \gset
SELECT (:'m1j'::jsonb) ->> 'id' AS m1 \gset
SELECT results_eq(format('SELECT * FROM pg_temp.steps(%L)', :'m1'),
  $$VALUES (1, 'email', 'pending', 'ada@example.com'), (2, 'sms', 'waiting', '+14155550123'),
           (3, 'push', 'waiting', 'fcm-token-0123456789abcdef')$$,
  'a three-step cascade: the email pending, the SMS and the push waiting');
SELECT is(ARRAY[(:'m1j'::jsonb) ->> 'channel', (:'m1j'::jsonb) ->> 'steps', (:'m1j'::jsonb) ->> 'from'],
  ARRAY['email', '3', 'Cascade <hi@cascade.example>'], 'the message is its first step''s: email, from the default sender');
SELECT is(pg_temp.jobs(pg_temp.attempt(:'m1', 1)) || pg_temp.jobs(pg_temp.attempt(:'m1', 2)), ARRAY['send'],
  'one send job, for the first step only');
SELECT results_eq(format($$SELECT provider, extract(epoch FROM step_timeout)::int, content FROM app.message_attempts
                           WHERE message_id = %L ORDER BY attempt_no$$, :'m1'),
  $$VALUES ('ses', 900, '{"body": "Hello", "subject": "Hi"}'::jsonb), ('twilio', 30, '{"body": "Hello"}'),
           ('fcm', NULL, '{"body": "Hello", "title": "Hi"}')$$,
  'each step: its channel''s provider, its timeout (the channel''s default, or its own; none on the last), its content');

-- The email is refused for good: the cascade moves on to the SMS.
SELECT app.claim_attempt(pg_temp.attempt(:'m1', 1)) ->> 'action' AS c1 \gset
SELECT is(app.record_send_error(pg_temp.attempt(:'m1', 1), 1, 'MessageRejected', 'Email address is not verified.', 400) ->> 'action',
  'failed', 'a permanent SES refusal fails the step');
SELECT results_eq(format('SELECT step, status FROM pg_temp.steps(%L)', :'m1'),
  $$VALUES (1, 'failed'), (2, 'pending'), (3, 'waiting')$$, 'the SMS step is pending now');
SELECT results_eq(format('SELECT status, channel, to_address, current_step FROM app.messages WHERE id = %L', :'m1'),
  $$VALUES ('sending', 'sms', '+14155550123', 2)$$, 'the message is on its second step, not finished');
SELECT is(pg_temp.jobs(pg_temp.attempt(:'m1', 2)), ARRAY['send'], 'its send job');
SELECT results_eq(format($$SELECT attempt_id, details ->> 'from_step', details ->> 'to_step', details ->> 'because'
                           FROM app.message_events WHERE message_id = %L AND event_type = 'fallback'$$, :'m1'),
  format($$VALUES (%L::uuid, '1', '2', 'failed')$$, pg_temp.attempt(:'m1', 2)), 'a fallback event says why');

-- The SMS is handed off: its timer is set; early, it does nothing.
SELECT pg_temp.hand_off(pg_temp.attempt(:'m1', 2), 'SM-C1', 'queued');
SELECT ok((SELECT timer_job_id IS NOT NULL FROM app.message_attempts WHERE id = pg_temp.attempt(:'m1', 2)),
  'the handed-off step with a timeout has a timer');
SELECT results_eq(format($$SELECT entrypoint, execute_after > now() + interval '29 seconds'
                           FROM pgqueuer.pgqueuer WHERE id = (SELECT timer_job_id FROM app.message_attempts WHERE id = %L)$$,
                         pg_temp.attempt(:'m1', 2)),
  $$VALUES ('step_timeout'::text, true)$$, 'a step_timeout job, due when the 30 s are over');
SELECT is(app.expire_steps(ARRAY[pg_temp.attempt(:'m1', 2)]) ->> 'expired', '0', 'before its time: nothing expires');
-- Time passes: no final receipt.
UPDATE app.message_attempts SET handed_off_at = now() - interval '31 seconds' WHERE id = pg_temp.attempt(:'m1', 2);
SELECT is(app.expire_steps(ARRAY[pg_temp.attempt(:'m1', 2)]) ->> 'expired', '1', 'after it: the SMS step expires');
SELECT results_eq(format('SELECT step, status FROM pg_temp.steps(%L)', :'m1'),
  $$VALUES (1, 'failed'), (2, 'timed_out'), (3, 'pending')$$, 'timed out; the push is pending');
SELECT is(pg_temp.events_of(:'m1') @> ARRAY['step_timeout', 'fallback'], true, 'step_timeout and a second fallback');

-- The push is accepted by FCM (its final word): delivered, the message ends.
SELECT pg_temp.hand_off(pg_temp.attempt(:'m1', 3), 'projects/p/messages/1', 'accepted');
SELECT results_eq(format('SELECT status, channel, current_step, completed_at IS NOT NULL FROM app.messages WHERE id = %L', :'m1'),
  $$VALUES ('delivered', 'push', 3, true)$$, 'delivered by push, the third step');
-- A late receipt for the timed-out SMS: recorded, the message does not reopen.
SELECT pg_temp.receipt('twilio', pg_temp.attempt(:'m1', 2), 'SM-C1', 'delivered');
SELECT results_eq(format('SELECT step, status FROM pg_temp.steps(%L)', :'m1'),
  $$VALUES (1, 'failed'), (2, 'delivered'), (3, 'delivered')$$, 'the late receipt lands on its step');
SELECT results_eq(format('SELECT status, current_step FROM app.messages WHERE id = %L', :'m1'),
  $$VALUES ('delivered', 3)$$, 'the message stays as it ended');
SELECT is((SELECT count(*)::int FROM app.message_events WHERE message_id = :'m1' AND event_type = 'late_receipt'), 1,
  'reported as a late_receipt event');

-- Delivered before its timeout: the timer is deleted and the steps left are canceled.
SELECT (pg_temp.submit(:'t', '{"channels": [
  {"channel": "sms", "to": "+14155550124", "body": "two", "timeout_seconds": 60},
  {"channel": "email", "to": "bo@example.com", "subject": "s", "body": "two"}]}') ->> 'id') AS m2 \gset
SELECT pg_temp.hand_off(pg_temp.attempt(:'m2', 1), 'SM-C2', 'queued');
SELECT (SELECT timer_job_id FROM app.message_attempts WHERE id = pg_temp.attempt(:'m2', 1)) AS timer2 \gset
SELECT pg_temp.receipt('twilio', pg_temp.attempt(:'m2', 1), 'SM-C2', 'delivered');
SELECT results_eq(format('SELECT step, status FROM pg_temp.steps(%L)', :'m2'),
  $$VALUES (1, 'delivered'), (2, 'canceled')$$, 'delivered: the email step is canceled, never sent');
SELECT is((SELECT count(*)::int FROM pgqueuer.pgqueuer WHERE id = :timer2), 0, 'and the timer deleted');
SELECT is((SELECT status::text FROM pgqueuer.pgqueuer_log WHERE job_id = :timer2 ORDER BY id DESC LIMIT 1), 'deleted',
  'its log says so');

-- A step that may not go at intake is skipped with its reasons; one that may not go at
-- its claim is rejected and the cascade moves on.
SELECT pg_temp.opt(:'t', 'opt_out', 'cy@example.com', '{"channel": "email"}') IS NOT NULL AS o1 \gset
SELECT (pg_temp.submit(:'t', '{"channels": [
  {"channel": "email", "to": "cy@example.com", "subject": "s", "body": "three"},
  {"channel": "sms", "to": "+14155550125", "body": "three"}]}') ->> 'id') AS m3 \gset
SELECT results_eq(format('SELECT step, status, reasons -> 0 ->> ''code'' FROM app.message_attempts a, LATERAL (SELECT a.attempt_no AS step) s WHERE message_id = %L ORDER BY 1', :'m3'),
  $$VALUES (1, 'rejected', 'opted_out'), (2, 'pending', NULL)$$, 'an opted-out email step is skipped at intake; the SMS goes');
SELECT results_eq(format('SELECT status, channel, current_step FROM app.messages WHERE id = %L', :'m3'),
  $$VALUES ('queued', 'sms', 2)$$, 'the message starts on its second step');
SELECT ok((SELECT details ->> 'decision' = 'skipped' FROM app.message_events WHERE message_id = :'m3' AND event_type = 'rejected'),
  'a rejected event says the step was skipped');
-- An opt-out between two steps stops the rest.
SELECT (pg_temp.submit(:'t', '{"channels": [
  {"channel": "email", "to": "di@example.com", "subject": "s", "body": "four"},
  {"channel": "sms", "to": "+14155550126", "body": "four"}]}') ->> 'id') AS m4 \gset
SELECT app.claim_attempt(pg_temp.attempt(:'m4', 1)) ->> 'action' AS c4 \gset
SELECT app.record_send_error(pg_temp.attempt(:'m4', 1), 1, 'MessageRejected', 'no', 400) ->> 'action' AS e4 \gset
SELECT pg_temp.opt(:'t', 'opt_out', '+14155550126') IS NOT NULL AS o2 \gset
SELECT is(app.claim_attempt(pg_temp.attempt(:'m4', 2)) ->> 'reason', 'opted_out', 'the SMS step''s claim finds the opt-out');
SELECT results_eq(format('SELECT status, error_code, completed_at IS NOT NULL FROM app.messages WHERE id = %L', :'m4'),
  $$VALUES ('rejected', 'opted_out', true)$$, 'the last step rejected: the message is rejected, nothing sent');
-- Nothing may go at all: rejected at intake, every step with its reasons.
SELECT pg_temp.submit(:'t', '{"channels": [
  {"channel": "email", "to": "cy@example.com", "subject": "s", "body": "five"},
  {"channel": "sms", "to": "+14155550126", "body": "five"}]}') AS m5j \gset
SELECT results_eq(format($$SELECT (%L::jsonb) ->> 'status', jsonb_path_query_array((%L::jsonb) -> 'reasons', '$[*].step')$$, :'m5j', :'m5j'),
  $$VALUES ('rejected', '[1, 2]'::jsonb)$$, 'no step may go: rejected, with each step''s reasons (numbered)');

-- SES: a Bounce after a Delivery corrects the message; the cascade does not reopen.
SELECT (pg_temp.submit(:'t', '{"channels": [
  {"channel": "email", "to": "ed@example.com", "subject": "s", "body": "six"},
  {"channel": "sms", "to": "+14155550127", "body": "six"}]}') ->> 'id') AS m6 \gset
SELECT pg_temp.hand_off(pg_temp.attempt(:'m6', 1), 'ses-6', 'Send');
SELECT pg_temp.receipt('ses', pg_temp.attempt(:'m6', 1), 'ses-6', 'Delivery');
SELECT is(pg_temp.message_status(:'m6'), 'delivered', 'Delivery: delivered, the SMS canceled');
SELECT pg_temp.receipt('ses', pg_temp.attempt(:'m6', 1), 'ses-6', 'Bounce', 'Permanent:General');
SELECT results_eq(format('SELECT step, status FROM pg_temp.steps(%L)', :'m6'),
  $$VALUES (1, 'undelivered'), (2, 'canceled')$$, 'then a Bounce: the step is undelivered, the SMS stays canceled');
SELECT results_eq(format($$SELECT m.status, m.error_code, (SELECT count(*)::int FROM app.message_events e
                                                         WHERE e.message_id = m.id AND e.event_type = 'corrected')
                           FROM app.messages m WHERE m.id = %L$$, :'m6'),
  $$VALUES ('undelivered', 'ses:Permanent:General', 1)$$, 'the message follows, as a correction');
-- In the other order the end is the same (Bounce outranks Delivery).
SELECT (pg_temp.submit(:'t', '{"channel": "email", "to": "fay@example.com", "subject": "s", "body": "seven"}') ->> 'id') AS m7 \gset
SELECT pg_temp.hand_off(pg_temp.attempt(:'m7', 1), 'ses-7', 'Send');
SELECT pg_temp.receipt('ses', pg_temp.attempt(:'m7', 1), 'ses-7', 'Bounce', 'Permanent:General');
SELECT pg_temp.receipt('ses', pg_temp.attempt(:'m7', 1), 'ses-7', 'Delivery');
SELECT results_eq(format('SELECT status, error_code FROM app.messages WHERE id = %L', :'m7'),
  $$VALUES ('undelivered', 'ses:Permanent:General')$$, 'Bounce then Delivery: undelivered too');
SELECT results_eq(format($$SELECT address, list, source FROM app.suppression_events WHERE tenant_id = %L ORDER BY id$$, :'t'),
  $$VALUES ('ed@example.com', 'hard_bounce', 'bounce'), ('fay@example.com', 'hard_bounce', 'bounce')$$,
  'a hard bounce lists the address (once, however often it is reported)');
SELECT is((SELECT reasons -> 0 ->> 'code' FROM private.check_send_eligibility(:'t', 'email', 'fay@example.com', NULL, NULL, 'transactional')),
  'suppressed', 'and the address is not mailed again');

-- A contact: its addresses from the identity graph; none for push (missing_address).
INSERT INTO app.imports (tenant_id, kind, status, parser_version, rows_total)
VALUES (:'t', 'universe', 'merging', 'test-1', 1) RETURNING id AS imp \gset
INSERT INTO app.import_extractions (import_id, row_number, tenant_id, parser_version, first_name, name_norm, phones, emails, observed_at)
VALUES (:imp, 1, :'t', 'test-1', 'Gus', 'gus', '{+14155550128}', '{gus@example.com}', now());
SELECT app.run_import_merge(:imp) IS NOT NULL AS merged \gset
SELECT id AS gus FROM app.identities WHERE tenant_id = :'t' AND name_norm = 'gus' \gset
SELECT (pg_temp.submit(:'t', jsonb_build_object('contact_id', :'gus', 'channels', jsonb_build_array(
  jsonb_build_object('channel', 'push', 'body', 'eight'),
  jsonb_build_object('channel', 'email', 'subject', 's', 'body', 'eight'),
  jsonb_build_object('channel', 'sms', 'body', 'eight')))) ->> 'id') AS m8 \gset
SELECT results_eq(format($$SELECT step, status, "to", (SELECT reasons -> 0 ->> 'code' FROM app.message_attempts
                                                       WHERE message_id = %L AND attempt_no = step)
                           FROM pg_temp.steps(%L)$$, :'m8', :'m8'),
  $$VALUES (1, 'rejected', NULL::text, 'missing_address'), (2, 'pending', 'gus@example.com', NULL),
           (3, 'waiting', '+14155550128', NULL)$$,
  'to a contact: the email and the number from the graph; no push token: missing_address, skipped');
SELECT is((SELECT contact_id FROM app.messages WHERE id = :'m8'), :'gus'::uuid, 'the message names its contact');
SELECT is(pg_temp.problem(format($$SELECT private.submit_message(%L, NULL, '{"contact_id": "0190a000-0000-7000-8000-000000000000", "body": "x"}')$$, :'t')),
  'HM422 unknown_contact', 'a contact of no one (or of another tenant): unknown_contact');

SELECT * FROM finish();
ROLLBACK;
