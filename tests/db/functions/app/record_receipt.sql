-- app.record_receipt: a provider status callback is one append to the receipt inbox
-- (app.receipts, queued in private.receipt_queue), deduplicated per (provider, SID,
-- status), answered {duplicate, queued} at once, with no lock on the attempt.
-- app.apply_receipts applies it: monotonic, first terminal status wins, resolves
-- hand-offs never recorded, logs other SIDs and unknown statuses without applying them.
BEGIN;
\ir ../../helpers.psql
SELECT plan(73);

SELECT (pg_temp.new_tenant('Receipt Co') -> 'tenant' ->> 'id') AS t \gset
-- Message n: submitted, claimed (send) and, unless said otherwise, handed off as SM-n
-- (status queued, applied here so that each section starts from a settled state).
CREATE FUNCTION pg_temp.sent_message(p_tenant uuid, p_sid text) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
  v_a uuid := pg_temp.handed_off(p_tenant, p_sid);
BEGIN
  PERFORM app.apply_receipts();
  RETURN v_a;
END
$$;
-- Applies the pending receipts; returns how many attempts they changed.
CREATE FUNCTION pg_temp.apply() RETURNS int LANGUAGE sql AS $$
  SELECT coalesce((app.apply_receipts() ->> 'attempts_changed')::int, 0)
$$;
SELECT pg_temp.sent_message(:'t', 'SM-1') AS a1 \gset
SELECT message_id AS m1, message_created_at AS c1 FROM app.message_attempts WHERE id = :'a1' \gset

-- Refusals: nothing is stored.
SELECT pg_temp.counts() AS before \gset
SELECT is(pg_temp.problem(format($$SELECT app.record_receipt('nexmo', %L, 'SM-1', 'delivered')$$, :'a1')),
  'HM422 unknown_provider', 'an unknown provider: HM422 unknown_provider');
SELECT is(pg_temp.problem(format($$SELECT app.record_receipt(NULL, %L, 'SM-1', 'delivered')$$, :'a1')),
  'HM422 unknown_provider', 'no provider: HM422 unknown_provider');
SELECT is(pg_temp.problem(format($$SELECT app.record_receipt('twilio', %L, NULL, 'delivered')$$, :'a1')),
  'HM422 invalid_receipt', 'no SID: HM422 invalid_receipt');
SELECT is(pg_temp.problem(format($$SELECT app.record_receipt('twilio', %L, '', 'delivered')$$, :'a1')),
  'HM422 invalid_receipt', 'an empty SID: HM422 invalid_receipt');
SELECT is(pg_temp.problem(format($$SELECT app.record_receipt('twilio', %L, 'SM-1', NULL)$$, :'a1')),
  'HM422 invalid_receipt', 'no status: HM422 invalid_receipt');
SELECT is(pg_temp.problem(format($$SELECT app.record_receipt('twilio', %L, 'SM-1', 'delivered')$$, private.uuid7())),
  'HM404 attempt_not_found', 'an unknown attempt: HM404 attempt_not_found');
SELECT is(pg_temp.problem(format($$SELECT app.record_receipt('twilio', %L, 'SM-1', 'delivered')$$, gen_random_uuid())),
  'HM404 attempt_not_found', 'a non-v7 id: HM404 attempt_not_found');
SELECT is(pg_temp.counts(), :'before'::jsonb, 'no refusal stored a receipt or queued anything');

-- The normal life: sent, delivered.
SELECT is(app.record_receipt('twilio', :'a1', 'SM-1', 'sent', NULL, NULL, '{"MessageStatus": "sent"}'),
  '{"duplicate": false, "queued": true}'::jsonb, 'sent: stored and queued');
SELECT results_eq(format($$SELECT message_created_at, tenant_id, provider, provider_message_id, provider_status, error_code,
                                  error_message, source, payload, received_at
                             FROM app.receipts WHERE attempt_id = %L AND source = 'callback'$$, :'a1'),
  format($$VALUES (%L::timestamptz, %L::uuid, 'twilio', 'SM-1', 'sent', NULL::text, NULL::text, 'callback',
                   '{"MessageStatus": "sent"}'::jsonb, now())$$, :'c1', :'t'),
  'the inbox row: in the message''s partition, with the tenant, the status and the payload');
SELECT results_eq(format($$SELECT q.message_created_at FROM private.receipt_queue q JOIN app.receipts r
                             ON r.id = q.receipt_id AND r.message_created_at = q.message_created_at
                          WHERE r.attempt_id = %L AND r.provider_status = 'sent'$$, :'a1'),
  format($$VALUES (%L::timestamptz)$$, :'c1'), 'and it is queued for the applier');
SELECT results_eq(format('SELECT status, provider_status, provider_status_rank FROM app.message_attempts WHERE id = %L', :'a1'),
  $$VALUES ('handed_off', 'queued', 20)$$, 'the callback itself applies nothing');
SELECT is(pg_temp.apply(), 1, 'app.apply_receipts applies it');
SELECT results_eq(format('SELECT status, provider_status, provider_status_rank FROM app.message_attempts WHERE id = %L', :'a1'),
  $$VALUES ('handed_off', 'sent', 40)$$, 'the attempt records the provider status');
SELECT results_eq(format($$SELECT provider_status, dedupe_key, details - 'receipt_id' FROM app.message_events
                           WHERE message_id = %L AND event_type = 'provider_status' AND provider_status = 'sent'$$, :'m1'),
  $$VALUES ('sent', 'twilio:SM-1:sent',
            '{"provider_message_id": "SM-1", "source": "callback", "known_status": true}'::jsonb)$$,
  'a provider_status event, deduplicated on twilio:SID:status');
SELECT is(app.record_receipt('twilio', :'a1', 'SM-1', 'sent'),
  '{"duplicate": true, "queued": false}'::jsonb, 'the same (SID, status) again: duplicate');
SELECT is((SELECT count(*)::int FROM app.receipts WHERE provider_message_id = 'SM-1' AND provider_status = 'sent'), 1,
  'stored once');
SELECT is(pg_temp.pending_receipts(), 0, 'and not queued');
SELECT is(app.record_receipt('twilio', :'a1', 'SM-1', 'delivered'),
  '{"duplicate": false, "queued": true}'::jsonb, 'delivered: queued');
SELECT is(pg_temp.apply(), 1, 'and applied');
SELECT results_eq(format('SELECT status, completed_at FROM app.messages WHERE id = %L', :'m1'),
  $$VALUES ('delivered', now())$$, 'the message is delivered (terminal)');
SELECT is(pg_temp.attempt_status(:'a1'), 'delivered', 'the attempt is delivered');
SELECT is(app.record_receipt('twilio', :'a1', 'SM-1', 'delivered'),
  '{"duplicate": true, "queued": false}'::jsonb, 'delivered again: duplicate');

-- First terminal status wins.
SELECT is(app.record_receipt('twilio', :'a1', 'SM-1', 'undelivered', '30003', 'Unreachable'),
  '{"duplicate": false, "queued": true}'::jsonb, 'undelivered after delivered: stored (a new status)');
SELECT is(pg_temp.apply(), 0, 'but not applied');
SELECT results_eq(format('SELECT status, error_code, error_message FROM app.messages WHERE id = %L', :'m1'),
  $$VALUES ('delivered', NULL::text, NULL::text)$$, 'the message stays delivered, without error');
SELECT results_eq(format('SELECT status, provider_status, error_code FROM app.message_attempts WHERE id = %L', :'a1'),
  $$VALUES ('delivered', 'delivered', NULL::text)$$, 'the attempt stays delivered');
SELECT results_eq(format($$SELECT error_code FROM app.message_events WHERE message_id = %L AND dedupe_key = 'twilio:SM-1:undelivered'$$, :'m1'),
  $$VALUES ('twilio:30003')$$, 'the late undelivered is in the ledger with its error code');
SELECT app.record_receipt('twilio', :'a1', 'SM-1', 'failed') IS NOT NULL AS r \gset
SELECT is(pg_temp.apply(), 0, 'failed after delivered: not applied');
SELECT app.record_receipt('twilio', :'a1', 'SM-1', 'read') IS NOT NULL AS r \gset
SELECT is(pg_temp.apply(), 1, 'read after delivered: applied (it outranks delivered, and means delivered too)');
SELECT is(pg_temp.message_status(:'m1'), 'delivered', 'the message is still delivered');

-- Out of order: delivered arrives before sent.
SELECT pg_temp.sent_message(:'t', 'SM-2') AS a2 \gset
SELECT message_id AS m2 FROM app.message_attempts WHERE id = :'a2' \gset
SELECT app.record_receipt('twilio', :'a2', 'SM-2', 'delivered') IS NOT NULL AS r \gset
SELECT is(pg_temp.apply(), 1, 'delivered first: applied');
SELECT is(pg_temp.message_status(:'m2'), 'delivered', 'the message is delivered');
SELECT app.record_receipt('twilio', :'a2', 'SM-2', 'sent') IS NOT NULL AS r \gset
SELECT is(pg_temp.apply(), 0, 'sent after delivered: not applied');
SELECT is(app.record_receipt('twilio', :'a2', 'SM-2', 'queued'), '{"duplicate": true, "queued": false}'::jsonb,
  'queued as a callback: a duplicate of the status answered at hand-off');
SELECT results_eq(format('SELECT provider_status, provider_status_rank FROM app.message_attempts WHERE id = %L', :'a2'),
  $$VALUES ('delivered', 100)$$, 'the provider status does not regress');
SELECT is(pg_temp.message_status(:'m2'), 'delivered', 'nor does the message');
SELECT is((SELECT count(*)::int FROM app.message_events WHERE message_id = :'m2' AND event_type = 'provider_status'), 3,
  'every receipt (queued at hand-off, delivered, sent) is in the ledger, once');

-- Before terminal: lower ranks do not apply, higher ones do.
SELECT pg_temp.sent_message(:'t', 'SM-3') AS a3 \gset
SELECT message_id AS m3 FROM app.message_attempts WHERE id = :'a3' \gset
SELECT app.record_receipt('twilio', :'a3', 'SM-3', 'sent') IS NOT NULL AS r \gset
SELECT is(pg_temp.apply(), 1, 'sent applies');
SELECT app.record_receipt('twilio', :'a3', 'SM-3', 'sending') IS NOT NULL AS r \gset
SELECT is(pg_temp.apply(), 0, 'sending after sent does not');
SELECT app.record_receipt('twilio', :'a3', 'SM-3', 'undelivered', '30003', 'Unreachable destination handset') IS NOT NULL AS r \gset
SELECT is(pg_temp.apply(), 1, 'undelivered applies');
SELECT results_eq(format('SELECT status, error_code, error_message FROM app.messages WHERE id = %L', :'m3'),
  $$VALUES ('undelivered', 'twilio:30003', 'Unreachable destination handset')$$,
  'the message is undelivered with error_code twilio:30003');
SELECT results_eq(format('SELECT status, error_code FROM app.message_attempts WHERE id = %L', :'a3'),
  $$VALUES ('undelivered', 'twilio:30003')$$, 'and so is the attempt');
SELECT app.record_receipt('twilio', :'a3', 'SM-3', 'delivered') IS NOT NULL AS r \gset
SELECT is(pg_temp.apply(), 0, 'delivered after undelivered: not applied');

-- The receipt arrives before the hand-off was recorded (the worker died): it resolves it.
SELECT pg_temp.sent_message(:'t', NULL) AS a4 \gset
SELECT message_id AS m4 FROM app.message_attempts WHERE id = :'a4' \gset
SELECT is(app.record_receipt('twilio', :'a4', 'SM-4', 'sent'), '{"duplicate": false, "queued": true}'::jsonb,
  'a receipt for an attempt without SID is taken');
SELECT is(app.apply_receipts(), '{"applied": 1, "attempts_changed": 1, "handoffs_recorded": 1}'::jsonb,
  'and applied, recording the hand-off');
SELECT results_eq(format('SELECT status, provider_message_id, handed_off_at FROM app.message_attempts WHERE id = %L', :'a4'),
  $$VALUES ('handed_off', 'SM-4', now())$$, 'the attempt is handed off with the receipt''s SID');
SELECT is(pg_temp.events_of(:'m4'), ARRAY['accepted', 'claimed', 'handed_off', 'provider_status'],
  'the hand-off the receipt implies and the receipt are in the ledger');
SELECT is(app.claim_attempt(:'a4'), jsonb_build_object('action', 'skip', 'reason', 'attempt_handed_off', 'attempt_id', :'a4'::uuid),
  'a later claim skips it: no resend');
SELECT is(app.reconcile_attempt(:'a4', 1, '[]'), '{"action": "skip", "reason": "attempt_handed_off"}'::jsonb,
  'and a reconcile too');
SELECT is(app.record_handoff(:'a4', 'SM-4'), '{"recorded": 0, "duplicates": 0, "already_recorded": 1}'::jsonb,
  'the worker''s late hand-off is idempotent');
SELECT is(pg_temp.apply(), 0, 'and its answered status (queued) changes nothing');

SELECT pg_temp.sent_message(:'t', NULL) AS a5 \gset
SELECT app.record_receipt('twilio', :'a5', 'SM-5', 'delivered') IS NOT NULL AS r \gset
SELECT is(pg_temp.apply(), 1, 'a terminal receipt before the hand-off');
SELECT results_eq(format('SELECT status, provider_message_id FROM app.message_attempts WHERE id = %L', :'a5'),
  $$VALUES ('delivered', 'SM-5')$$, 'the attempt is delivered with the SID');

-- A SID that is not the attempt's.
SELECT pg_temp.sent_message(:'t', 'SM-6') AS a6 \gset
SELECT message_id AS m6 FROM app.message_attempts WHERE id = :'a6' \gset
SELECT is(app.record_receipt('twilio', :'a6', 'SM-other', 'failed'), '{"duplicate": false, "queued": true}'::jsonb,
  'a receipt with another SID is taken into the inbox');
SELECT is(pg_temp.apply(), 0, 'but not applied');
SELECT results_eq(format('SELECT status, provider_message_id FROM app.messages WHERE id = %L', :'m6'),
  $$VALUES ('sent', 'SM-6')$$, 'the message is unchanged');
SELECT results_eq(format($$SELECT error_code, dedupe_key FROM app.message_events
                           WHERE message_id = %L AND event_type = 'provider_status' AND provider_status = 'failed'$$, :'m6'),
  $$VALUES ('provider_message_id_mismatch', 'twilio:SM-other:failed')$$, 'the mismatch is in the ledger');

-- Statuses Hermes does not know: logged, not applied.
SELECT is(app.record_receipt('twilio', :'a6', 'SM-6', 'partially_delivered'), '{"duplicate": false, "queued": true}'::jsonb,
  'an unknown status is taken');
SELECT is(pg_temp.apply(), 0, 'an unknown status: not applied');
SELECT is((SELECT details ->> 'known_status' FROM app.message_events WHERE dedupe_key = 'twilio:SM-6:partially_delivered'),
  'false', 'logged with known_status false');
SELECT app.record_receipt('twilio', :'a6', 'SM-6', 'canceled') IS NOT NULL AS r \gset
SELECT is(pg_temp.apply(), 1, 'canceled applies');
SELECT is(pg_temp.message_status(:'m6'), 'failed', 'canceled: the message failed');

-- read (WhatsApp) can come before delivered: it implies delivered and ends the message.
SELECT pg_temp.sent_message(:'t', 'SM-7') AS a7 \gset
SELECT message_id AS m7 FROM app.message_attempts WHERE id = :'a7' \gset
SELECT app.record_receipt('twilio', :'a7', 'SM-7', 'read') IS NOT NULL AS r \gset
SELECT is(pg_temp.apply(), 1, 'read before delivered: applied');
SELECT results_eq(format('SELECT m.status, a.status, m.completed_at IS NOT NULL FROM app.messages m
                            JOIN app.message_attempts a ON a.message_id = m.id WHERE m.id = %L', :'m7'),
  $$VALUES ('delivered', 'delivered', true)$$, 'message and attempt are terminal, delivered');
SELECT app.record_receipt('twilio', :'a7', 'SM-7', 'delivered') IS NOT NULL AS r \gset
SELECT is(pg_temp.apply(), 0, 'the late delivered changes nothing');

SELECT ok((SELECT prosecdef FROM pg_proc WHERE oid = 'app.record_receipt(text,uuid,text,text,text,text,jsonb)'::regprocedure)
          AND has_function_privilege('hermes_api', 'app.record_receipt(text,uuid,text,text,text,text,jsonb)', 'EXECUTE')
          AND NOT has_function_privilege('hermes_worker', 'app.record_receipt(text,uuid,text,text,text,text,jsonb)', 'EXECUTE'),
  'SECURITY DEFINER; the API records receipts');

-- app.record_receipts: the API's batch of callbacks, one outcome per element, in order.
SELECT pg_temp.sent_message(:'t', 'SM-B1') AS b1 \gset
SELECT is(app.record_receipts(jsonb_build_array(
    jsonb_build_object('provider', 'twilio', 'attempt_id', :'b1', 'provider_message_id', 'SM-B1', 'provider_status', 'sent'),
    jsonb_build_object('provider', 'twilio', 'attempt_id', private.uuid7(), 'provider_message_id', 'SM-Bx', 'provider_status', 'sent'),
    jsonb_build_object('provider', 'twilio', 'attempt_id', :'b1', 'provider_message_id', 'SM-B1', 'provider_status', 'sent'),
    jsonb_build_object('provider', 'twilio', 'attempt_id', :'b1', 'provider_message_id', 'SM-B1', 'provider_status', 'queued'),
    jsonb_build_object('provider', 'twilio', 'attempt_id', :'b1', 'provider_message_id', 'SM-B1', 'provider_status', 'delivered'))),
  '[{"index": 0, "outcome": "queued"}, {"index": 1, "outcome": "attempt_not_found"},
    {"index": 2, "outcome": "duplicate"}, {"index": 3, "outcome": "duplicate"},
    {"index": 4, "outcome": "queued"}]'::jsonb,
  'a batch: new ones queued, an unknown attempt, a repeat inside the batch and a status already stored (the hand-off''s queued)');
SELECT is(pg_temp.apply(), 1, 'applied together');
SELECT is(pg_temp.attempt_status(:'b1'), 'delivered', 'the attempt is delivered');
SELECT is(pg_temp.problem($$SELECT app.record_receipts('[{"provider": "pigeon", "attempt_id": "01a23302-1234-75ce-b144-97e8f3f3fb22", "provider_message_id": "x", "provider_status": "sent"}]')$$),
  'HM422 unknown_provider', 'an unknown provider refuses the batch');
SELECT is(pg_temp.problem($$SELECT app.record_receipts('[{"provider": "twilio", "attempt_id": "01a23302-1234-75ce-b144-97e8f3f3fb22", "provider_message_id": "", "provider_status": "sent"}]')$$),
  'HM422 invalid_receipt', 'a receipt without provider id refuses the batch');
SELECT is(pg_temp.problem($$SELECT app.record_receipts('{}')$$), 'HM422 invalid_receipt', 'not an array');

SELECT * FROM finish();
ROLLBACK;
