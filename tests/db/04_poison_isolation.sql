-- Poison isolation in the send path (issue "Trust between tenants"):
--   * a later cascade step with no address (a contact without one for its channel) is
--     rejected at intake (missing_address), never stored 'waiting' with no recipient;
--   * a claim batch with an attempt that has no address (a row stored before that)
--     still claims every other attempt -- also another tenant's -- and rejects that one
--     (missing_address); a marketing message with a vertical no longer breaks the
--     batch on the cooldown store's key;
--   * the sweep counts replaced jobs; the fifth failure ends the attempt (job_failed)
--     and its cascade moves on; deferrals are not failures;
--   * a step timer whose job was lost is re-armed;
--   * a receipt that cannot be applied is quarantined (app.isolate_receipts) and the
--     inbox behind it -- every tenant's receipts -- moves on.
BEGIN;
\ir helpers.psql
SELECT plan(24);

CREATE FUNCTION pg_temp.submit(p_tenant uuid, p_request jsonb) RETURNS jsonb LANGUAGE sql AS $$
  SELECT private.submit_message(p_tenant, NULL, p_request) -> 'message'
$$;
CREATE FUNCTION pg_temp.steps(p_message uuid) RETURNS TABLE (step int, status text, "to" text, code text)
LANGUAGE sql AS $$
  SELECT attempt_no, status, to_address, reasons -> 0 ->> 'code' FROM app.message_attempts
   WHERE message_id = p_message ORDER BY attempt_no
$$;
CREATE FUNCTION pg_temp.attempt(p_message uuid, p_step int) RETURNS uuid LANGUAGE sql AS $$
  SELECT id FROM app.message_attempts WHERE message_id = p_message AND attempt_no = p_step
$$;
CREATE FUNCTION pg_temp.send_jobs(p_attempt uuid, p_entrypoint text DEFAULT 'send') RETURNS int LANGUAGE sql AS $$
  SELECT count(*)::int FROM pgqueuer.pgqueuer
   WHERE entrypoint = p_entrypoint AND status IN ('queued', 'picked')
     AND convert_from(payload, 'UTF8')::jsonb ->> 'attempt_id' = p_attempt::text
$$;

SELECT (pg_temp.new_tenant('Poison A') -> 'tenant' ->> 'id') AS ta \gset
SELECT (pg_temp.new_tenant('Poison B') -> 'tenant' ->> 'id') AS tb \gset

-- A contact with a number and no email address.
INSERT INTO app.imports (tenant_id, kind, status, parser_version, rows_total)
VALUES (:'ta', 'universe', 'merging', 'test-1', 1) RETURNING id AS imp \gset
INSERT INTO app.import_extractions (import_id, row_number, tenant_id, parser_version, first_name, name_norm, phones, emails, observed_at)
VALUES (:imp, 1, :'ta', 'test-1', 'Hal', 'hal', '{+14155550131}', '{}', now());
SELECT app.run_import_merge(:imp) IS NOT NULL AS merged \gset
SELECT id AS hal FROM app.identities WHERE tenant_id = :'ta' AND name_norm = 'hal' \gset

-- 1. Intake: sms, then email (no address), then sms again.
SELECT (pg_temp.submit(:'ta', jsonb_build_object('contact_id', :'hal', 'vertical', 'solar', 'category', 'marketing',
  'channels', jsonb_build_array(
    jsonb_build_object('channel', 'sms', 'body', 'one', 'timeout_seconds', 60),
    jsonb_build_object('channel', 'email', 'from', 'tests@hermes.example', 'subject', 's', 'body', 'two', 'timeout_seconds', 60),
    jsonb_build_object('channel', 'sms', 'body', 'three')))) ->> 'id') AS m1 \gset
SELECT results_eq(format('SELECT * FROM pg_temp.steps(%L)', :'m1'),
  $$VALUES (1, 'pending', '+14155550131', NULL::text), (2, 'rejected', NULL, 'missing_address'),
           (3, 'waiting', '+14155550131', NULL)$$,
  'a later step with no address is rejected at intake (missing_address), not left waiting');

-- 2. A claim batch with a poison attempt: a marketing message with a vertical whose
--    pending step has no address (as rows stored before the fix could be), and
--    another tenant's ordinary message.
SELECT (pg_temp.submit(:'ta', '{"to": "+14155550132", "body": "poison", "vertical": "solar", "category": "marketing"}') ->> 'id') AS mp \gset
SELECT pg_temp.attempt(:'mp', 1) AS ap \gset
UPDATE app.message_attempts SET to_address = NULL WHERE id = :'ap';
SELECT (pg_temp.submit(:'tb', '{"to": "+14155550133", "body": "fine"}') ->> 'id') AS mb \gset
SELECT pg_temp.attempt(:'mb', 1) AS ab \gset
SELECT app.claim_attempts(ARRAY[:'ap', :'ab']::uuid[]) AS d \gset
SELECT is(jsonb_array_length(:'d'::jsonb), 2, 'the batch is claimed (before: an error for the whole batch)');
SELECT results_eq(format($$SELECT d ->> 'attempt_id', d ->> 'action', d ->> 'reason' FROM jsonb_array_elements(%L::jsonb) d
                           ORDER BY d ->> 'attempt_id' = %L$$, :'d', :'ab'),
  format($$VALUES (%L, 'skip', 'missing_address'), (%L, 'send', NULL)$$, :'ap', :'ab'),
  'the attempt with no address is rejected (missing_address), the other tenant''s is sent');
SELECT results_eq(format('SELECT status, error_code FROM app.message_attempts WHERE id = %L', :'ap'),
  $$VALUES ('rejected', 'missing_address')$$, 'the poison attempt ends rejected');
SELECT is(pg_temp.message_status(:'mp'), 'rejected', 'and its message');
SELECT is((SELECT count(*)::int FROM app.contact_history WHERE address_hash IS NULL), 0, 'nothing recorded without an address');

-- 3. The sweep: replaced jobs are counted, the fifth ends the attempt.
UPDATE private.settings SET value = '10 minutes' WHERE key = 'requeue_after';
SELECT (pg_temp.submit(:'ta', jsonb_build_object('channels', jsonb_build_array(
    jsonb_build_object('channel', 'sms', 'to', '+14155550134', 'body', 'first', 'timeout_seconds', 60),
    jsonb_build_object('channel', 'sms', 'to', '+14155550135', 'body', 'second')))) ->> 'id') AS mc \gset
SELECT pg_temp.attempt(:'mc', 1) AS ac1, pg_temp.attempt(:'mc', 2) AS ac2 \gset
UPDATE pgqueuer.pgqueuer SET status = 'failed' WHERE convert_from(payload, 'UTF8')::jsonb ->> 'attempt_id' = :'ac1';
UPDATE app.message_attempts SET updated_at = now() - interval '11 minutes' WHERE id = :'ac1';
SELECT is(app.run_maintenance() -> 'attempts_requeued', '1'::jsonb, 'a held job: requeued');
SELECT results_eq(format('SELECT status, job_failures FROM app.message_attempts WHERE id = %L', :'ac1'),
  $$VALUES ('pending', 1)$$, 'counted once');
UPDATE pgqueuer.pgqueuer SET status = 'failed' WHERE convert_from(payload, 'UTF8')::jsonb ->> 'attempt_id' = :'ac1';
UPDATE app.message_attempts SET updated_at = now() - interval '11 minutes', job_failures = 4 WHERE id = :'ac1';
SELECT is(app.run_maintenance() - 'partitions_created' - 'idempotency_keys_pruned',
  '{"attempts_requeued": 0, "attempts_given_up": 1, "timers_rearmed": 0, "attempts_timed_out": 0, "imports_requeued": 0}'::jsonb,
  'the fifth failure: given up, not requeued');
SELECT results_eq(format('SELECT status, error_code, job_failures, completed_at IS NOT NULL FROM app.message_attempts WHERE id = %L', :'ac1'),
  $$VALUES ('failed', 'job_failed', 5, true)$$, 'the attempt ends failed (job_failed)');
SELECT is(pg_temp.send_jobs(:'ac1'), 0, 'with no new job');
SELECT results_eq(format('SELECT status, current_step FROM app.messages WHERE id = %L', :'mc'),
  $$VALUES ('queued', 2)$$, 'its cascade moves on to the next step');
SELECT is(pg_temp.send_jobs(:'ac2'), 1, 'whose send job is enqueued');
SELECT ok((SELECT details ->> 'reason' = 'job_failed' FROM app.message_events WHERE attempt_id = :'ac1' AND event_type = 'gave_up'),
  'a gave_up event says why');

-- 4. A lost step timer is re-armed.
SELECT (pg_temp.submit(:'tb', jsonb_build_object('channels', jsonb_build_array(
    jsonb_build_object('channel', 'sms', 'to', '+14155550136', 'body', 'timed', 'timeout_seconds', 60),
    jsonb_build_object('channel', 'sms', 'to', '+14155550137', 'body', 'after')))) ->> 'id') AS mt \gset
SELECT pg_temp.attempt(:'mt', 1) AS at1 \gset
SELECT app.claim_attempt(:'at1') IS NOT NULL AS c \gset
SELECT pg_temp.calling(:'at1') IS NOT NULL AS k \gset
SELECT app.record_handoff(:'at1', 'SM-timer-1') IS NOT NULL AS h \gset
UPDATE pgqueuer.pgqueuer SET status = 'failed'
 WHERE entrypoint = 'step_timeout' AND convert_from(payload, 'UTF8')::jsonb ->> 'attempt_id' = :'at1';
UPDATE app.message_attempts SET handed_off_at = now() - interval '12 minutes' WHERE id = :'at1';
SELECT is(app.run_maintenance() -> 'timers_rearmed', '1'::jsonb, 'the step past its timeout with a lost timer job is re-armed');
SELECT is(pg_temp.send_jobs(:'at1', 'step_timeout'), 1, 'it has a live timer job again');
SELECT is(app.run_maintenance() -> 'timers_rearmed', '0'::jsonb, 'once');

-- 5. A poison receipt at the head of the inbox (a fault injected: applying it raises).
SELECT app.apply_receipts() IS NOT NULL AS drained \gset
SELECT pg_temp.handed_off(:'ta', 'SM-poison-r', 'queued', 'poison receipt') AS apr,
       pg_temp.handed_off(:'tb', 'SM-fine-r', 'queued', 'fine receipt') AS afr \gset
SELECT app.apply_receipts() IS NOT NULL AS applied_handoffs \gset
CREATE FUNCTION pg_temp.poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'poison receipt'; END $$;
SELECT format('CREATE TRIGGER poison BEFORE INSERT ON app.message_events FOR EACH ROW WHEN (NEW.attempt_id = %L) EXECUTE FUNCTION pg_temp.poison()', :'apr') AS trig \gset
:trig;
SELECT app.record_receipt('twilio', :'apr', 'SM-poison-r', 'delivered') IS NOT NULL AS r1,
       app.record_receipt('twilio', :'afr', 'SM-fine-r', 'delivered') IS NOT NULL AS r2 \gset
SELECT isnt(pg_temp.problem('SELECT app.apply_receipts()'), 'no error', 'the batch with the poison receipt fails');
SELECT is(app.isolate_receipts(10) -> 'applied', '1'::jsonb, 'isolated: the other receipt is applied');
SELECT is(pg_temp.attempt_status(:'afr'), 'delivered', 'the other tenant''s message is delivered');
SELECT is((SELECT count(*)::int FROM private.receipt_quarantine), 1, 'the poison receipt is quarantined');
SELECT is(pg_temp.pending_receipts(), 0, 'and the inbox is empty');
DROP TRIGGER poison ON app.message_events;
-- A passing error (here a deadlock) quarantines nothing: raised again, the receipt stays.
SELECT pg_temp.handed_off(:'tb', 'SM-passing-r', 'queued', 'passing trouble') AS atr \gset
SELECT app.apply_receipts() IS NOT NULL AS applied_h2 \gset
CREATE FUNCTION pg_temp.deadlock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'a deadlock' USING ERRCODE = '40P01'; END $$;
SELECT format('CREATE TRIGGER deadlock BEFORE INSERT ON app.message_events FOR EACH ROW WHEN (NEW.attempt_id = %L) EXECUTE FUNCTION pg_temp.deadlock()', :'atr') AS trig2 \gset
:trig2;
SELECT app.record_receipt('twilio', :'atr', 'SM-passing-r', 'delivered') IS NOT NULL AS r3 \gset
SELECT is(pg_temp.problem('SELECT app.isolate_receipts(10)'), '40P01 ', 'a deadlock while isolating is raised again');
SELECT is(pg_temp.pending_receipts(), 1, 'and the receipt stays queued, not quarantined');
DROP TRIGGER deadlock ON app.message_events;

SELECT * FROM finish();
ROLLBACK;
