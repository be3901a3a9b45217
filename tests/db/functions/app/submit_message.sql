-- app.submit_message: validation (each refusal writes nothing), the one-transaction
-- acceptance (message, attempt, event, job, job log, audit) and idempotency; and
-- app.submit_messages, the batch (up to 1000 items, each answered on its own, per-item
-- idempotency keys). Both go through private.accept_messages.
BEGIN;
\ir ../../helpers.psql
SELECT plan(117);

SELECT r -> 'tenant' ->> 'id' AS t, r -> 'api_key' ->> 'id' AS k FROM pg_temp.new_tenant('Submit Co') r \gset
SELECT r -> 'tenant' ->> 'id' AS t_nofrom FROM pg_temp.new_tenant('No Sender Co', NULL) r \gset
SELECT r -> 'tenant' ->> 'id' AS t_other FROM pg_temp.new_tenant('Other Co') r \gset
SELECT r -> 'tenant' ->> 'id' AS t_susp FROM pg_temp.new_tenant('Suspended Co') r \gset
UPDATE app.tenants SET status = 'suspended' WHERE id = :'t_susp';
-- Senders of their own besides the shared +15005550006 (the sender registry).
SELECT pg_temp.new_sender(:'t', 'sms', '+15005550007') AS sender_t \gset
SELECT pg_temp.new_sender(:'t_nofrom', 'sms', '+15005550009') AS sender_nofrom \gset

-- 'SQLSTATE DETAIL' of a refused submit, plus ' +changed' if any row count changed.
CREATE FUNCTION pg_temp.refused(p_tenant uuid, p_request jsonb, p_key text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_before jsonb := pg_temp.counts();
  v_result text;
BEGIN
  v_result := pg_temp.problem(format('SELECT private.submit_message(%L, NULL, %L, %L)', p_tenant, p_request, p_key));
  RETURN v_result || CASE WHEN pg_temp.counts() <> v_before THEN ' +changed' ELSE '' END;
END
$$;
-- Row-count differences of a successful submit.
CREATE TEMP TABLE last_result (r jsonb, before jsonb, after jsonb);
CREATE FUNCTION pg_temp.submit(p_tenant uuid, p_request jsonb, p_key text DEFAULT NULL, p_api_key uuid DEFAULT NULL)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_before jsonb := pg_temp.counts();
  v_r jsonb;
BEGIN
  v_r := private.submit_message(p_tenant, p_api_key, p_request, p_key);
  DELETE FROM last_result;
  INSERT INTO last_result VALUES (v_r, v_before, pg_temp.counts());
  RETURN v_r;
END
$$;
CREATE FUNCTION pg_temp.delta() RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_object_agg(a.key, a.value::int - (l.before ->> a.key)::int)
    FROM last_result l, jsonb_each(l.after) a
$$;

-- Refusals ------------------------------------------------------------------------
SELECT is(pg_temp.refused(:'t', NULL), 'HM422 invalid_request', 'no body: HM422 invalid_request');
SELECT is(pg_temp.refused(:'t', '["+14155550123", "hi"]'), 'HM422 invalid_request', 'a JSON array: invalid_request');
SELECT is(pg_temp.refused(:'t', '"hi"'), 'HM422 invalid_request', 'a JSON string: invalid_request');
SELECT is(pg_temp.refused(:'t', '{"to": "+14155550123", "body": "hi", "priority": 1}'), 'HM422 unknown_field',
  'an unknown field: HM422 unknown_field');
SELECT is(pg_temp.problem_hint(format($$SELECT private.submit_message(%L, NULL, '{"to": "+14155550123", "body": "hi", "x": 1}')$$, :'t')),
  'A message takes "to", "body" and optionally "from", "channel", "vertical", "category" (or "channels": [steps] and "contact_id").', 'unknown_field has a hint');
SELECT is(pg_temp.refused(:'t', '{"body": "hi"}'), 'HM422 invalid_to', 'no "to": HM422 invalid_to');
SELECT is(pg_temp.refused(:'t', '{"to": 14155550123, "body": "hi"}'), 'HM422 invalid_to', '"to" a number: invalid_to');
SELECT is(pg_temp.refused(:'t', '{"to": null, "body": "hi"}'), 'HM422 invalid_to', '"to" null: invalid_to');
SELECT is(pg_temp.refused(:'t', '{"to": "call me", "body": "hi"}'), 'HM422 invalid_to', '"to" not a number: invalid_to');
SELECT is(pg_temp.refused(:'t', '{"to": "4155550123", "body": "hi"}'), 'HM422 invalid_to',
  '"to" without country code: invalid_to');
SELECT is(pg_temp.refused(:'t', '{"to": "+14155550123"}'), 'HM422 invalid_body', 'no "body": HM422 invalid_body');
SELECT is(pg_temp.refused(:'t', '{"to": "+14155550123", "body": 42}'), 'HM422 invalid_body', '"body" a number: invalid_body');
SELECT is(pg_temp.refused(:'t', '{"to": "+14155550123", "body": null}'), 'HM422 invalid_body', '"body" null: invalid_body');
SELECT is(pg_temp.refused(:'t', '{"to": "+14155550123", "body": ""}'), 'HM422 empty_body', 'empty body: HM422 empty_body');
SELECT is(pg_temp.refused(:'t', '{"to": "+14155550123", "body": "    "}'), 'HM422 empty_body', 'blank body: empty_body');
SELECT is(pg_temp.refused(:'t', '{"to": "+14155550123", "body": "\n\t \r"}'), 'HM422 empty_body',
  'whitespace of any kind only: empty_body');
SELECT is(pg_temp.refused(:'t', jsonb_build_object('to', '+14155550123', 'body', repeat('x', 1601))), 'HM422 body_too_long',
  '1601 characters: HM422 body_too_long');
SELECT is(pg_temp.refused(:'t', jsonb_build_object('to', '+14155550123', 'body', repeat('é', 1601))), 'HM422 body_too_long',
  '1601 two-byte characters: body_too_long');
SELECT is(pg_temp.refused(:'t', '{"to": "+14155550123", "body": "hi", "from": 15005550006}'), 'HM422 invalid_from',
  '"from" a number: HM422 invalid_from');
SELECT is(pg_temp.refused(:'t', '{"to": "+14155550123", "body": "hi", "from": "HERMES"}'), 'HM422 invalid_from',
  '"from" not a phone number: invalid_from');
SELECT is(pg_temp.refused(:'t_nofrom', '{"to": "+14155550123", "body": "hi"}'), 'HM422 missing_from',
  'no "from" and no default sender: HM422 missing_from');
SELECT is(pg_temp.refused(:'t_nofrom', '{"to": "+14155550123", "body": "hi", "from": null}'), 'HM422 missing_from',
  '"from": null and no default sender: missing_from');
SELECT is(pg_temp.refused(:'t_susp', '{"to": "+14155550123", "body": "hi"}'), 'HM403 tenant_suspended',
  'a suspended tenant: HM403 tenant_suspended');
SELECT is(pg_temp.refused(gen_random_uuid(), '{"to": "+14155550123", "body": "hi"}'), 'HM404 tenant_not_found',
  'an unknown tenant: HM404 tenant_not_found');
SELECT is(pg_temp.refused(:'t', '{"to": "+14155550123", "body": "hi"}', ''), 'HM422 invalid_idempotency_key',
  'an empty Idempotency-Key: HM422 invalid_idempotency_key');
SELECT is(pg_temp.refused(:'t', '{"to": "+14155550123", "body": "hi"}', repeat('k', 256)), 'HM422 invalid_idempotency_key',
  'a 256-character Idempotency-Key: invalid_idempotency_key');
SELECT is(pg_temp.refused(:'t', '{"to": "+14155550123", "body": ""}', 'key-of-invalid'), 'HM422 empty_body',
  'an invalid request with an Idempotency-Key is refused and stores nothing');
SELECT is((SELECT count(*)::int FROM app.messages), 0, 'no message was written by any refusal');

-- Acceptance -------------------------------------------------------------------------
SELECT (pg_temp.submit(:'t', '{"to": "+14155550123", "body": "Hello", "from": "+15005550007"}',
                       NULL, :'k') -> 'message' ->> 'id') AS m \gset
SELECT is(pg_temp.delta(), '{"tenants": 0, "api_keys": 0, "messages": 1, "attempts": 1, "events": 1,
  "idempotency_keys": 0, "audit": 1, "jobs": 1, "job_log": 1, "receipts": 0, "receipt_queue": 0}'::jsonb,
  'success writes one message, one attempt, one event, one job, one job log row and one audit row');
SELECT is((SELECT r ->> 'replayed' FROM last_result), 'false', 'replayed is false');
SELECT is((SELECT r -> 'message' FROM last_result), (SELECT private.message_json(m) FROM app.messages m WHERE id = :'m'),
  'the response is the stored message');
SELECT results_eq(format($$SELECT tenant_id, api_key_id, channel, to_address, from_address, body, status,
                                  idempotency_key, created_at, completed_at FROM app.messages WHERE id = %L$$, :'m'),
  format($$VALUES (%L::uuid, %L::uuid, 'sms', '+14155550123', '+15005550007', 'Hello', 'queued', NULL::text,
                   %L::timestamptz, NULL::timestamptz)$$, :'t', :'k', private.uuid7_time(:'m')),
  'the message: normalised numbers, queued, created_at = the instant in its UUIDv7 id');
SELECT is(substr(:'m', 15, 1), '7', 'the message id is a UUIDv7');
SELECT pg_temp.attempt_of(:'m') AS a \gset
SELECT results_eq(format($$SELECT message_id, message_created_at, tenant_id, attempt_no, channel, provider, status,
                                  claim_count, provider_message_id FROM app.message_attempts WHERE id = %L$$, :'a'),
  format($$VALUES (%L::uuid, %L::timestamptz, %L::uuid, 1, 'sms', 'twilio', 'pending', 0, NULL::text)$$,
         :'m', private.uuid7_time(:'m'), :'t'),
  'the attempt: number 1, twilio, pending, unclaimed');
SELECT is(private.uuid7_time(:'a'), private.uuid7_time(:'m'), 'the attempt id carries the message''s created_at');
SELECT results_eq(format($$SELECT event_type, status, attempt_id, tenant_id FROM app.message_events WHERE message_id = %L$$, :'m'),
  format($$VALUES ('accepted', 'queued', %L::uuid, %L::uuid)$$, :'a', :'t'),
  'one accepted event, status queued');
SELECT results_eq($$SELECT entrypoint, status::text, convert_from(payload, 'UTF8')::jsonb, execute_after FROM pgqueuer.pgqueuer$$,
  format($$VALUES ('send', 'queued', jsonb_build_object('attempt_id', %L::uuid), now())$$, :'a'),
  'one queued send_sms job, due now, whose payload is {"attempt_id": ...} only');
SELECT results_eq($$SELECT l.job_id, l.status::text, l.entrypoint FROM pgqueuer.pgqueuer_log l$$,
  $$SELECT id, 'queued', 'send' FROM pgqueuer.pgqueuer$$, 'one queued log row for the job');
SELECT results_eq(format($$SELECT tenant_id, api_key_id, action, target_id, details FROM app.audit_log
                           WHERE action = 'message.submit'$$),
  format($$VALUES (%L::uuid, %L::uuid, 'message.submit', %L, '{"idempotency_key": null}'::jsonb)$$, :'t', :'k', :'m'),
  'one audit row: message.submit by the key, on the message');

SELECT is(pg_temp.submit(:'t', '{"to": "+14155550123", "body": "default sender"}') -> 'message' ->> 'from',
  '+15005550006', 'without "from" the tenant''s default sender is used');
SELECT is(pg_temp.submit(:'t', '{"to": "+14155550123", "body": "null sender", "from": null}') -> 'message' ->> 'from',
  '+15005550006', '"from": null means the default sender');
SELECT is(pg_temp.submit(:'t', jsonb_build_object('to', '+14155550123', 'body', repeat('x', 1600))) -> 'message' ->> 'status',
  'queued', '1600 characters are accepted');
SELECT is(pg_temp.submit(:'t', jsonb_build_object('to', '+14155550123', 'body', repeat('😀', 1600))) -> 'message' ->> 'status',
  'queued', '1600 four-byte characters are accepted (characters, not bytes)');
SELECT is(pg_temp.delta() ->> 'messages', '1', 'and written');
SELECT is(pg_temp.submit(:'t_nofrom', '{"to": "+14155550123", "body": "hi", "from": "+15005550009"}') -> 'message' ->> 'from',
  '+15005550009', 'a tenant without default sender can pass "from"');

-- Idempotency -------------------------------------------------------------------------
SELECT pg_temp.submit(:'t', '{"to": "+14155550123", "body": "once", "from": "+15005550006"}', 'order-42') AS first \gset
SELECT is(pg_temp.delta() ->> 'idempotency_keys', '1', 'the first use of a key stores it');
SELECT results_eq(format($$SELECT message_id, response FROM app.idempotency_keys WHERE tenant_id = %L AND key = 'order-42'$$, :'t'),
  format($$VALUES (%L::uuid, %L::jsonb)$$, (:'first'::jsonb) -> 'message' ->> 'id', (:'first'::jsonb) -> 'message'),
  'with the message and the first response');
SELECT is((SELECT idempotency_key FROM app.messages WHERE id = ((:'first'::jsonb) -> 'message' ->> 'id')::uuid), 'order-42',
  'the message records its key');
SELECT pg_temp.submit(:'t', '{"from": "+15005550006", "body": "once", "to": "+14155550123"}', 'order-42') AS second \gset
SELECT is((:'second'::jsonb) ->> 'replayed', 'true', 'same key, same request: replayed = true');
SELECT is((:'second'::jsonb) -> 'message' ->> 'id', (:'first'::jsonb) -> 'message' ->> 'id', 'the same message id');
SELECT is((:'second'::jsonb) -> 'message', (:'first'::jsonb) -> 'message', 'the first response, as it was');
SELECT is(pg_temp.delta(), '{"tenants": 0, "api_keys": 0, "messages": 0, "attempts": 0, "events": 0,
  "idempotency_keys": 0, "audit": 0, "jobs": 0, "job_log": 0, "receipts": 0, "receipt_queue": 0}'::jsonb,
  'a replay writes nothing: no second message, attempt, event, job or audit row');
SELECT is(pg_temp.refused(:'t', '{"to": "+14155550123", "body": "twice", "from": "+15005550006"}', 'order-42'),
  'HM409 idempotency_key_reused', 'same key, different request: HM409 idempotency_key_reused');
SELECT is(pg_temp.refused(:'t', '{"to": "+14155550123", "body": "once"}', 'order-42'),
  'HM409 idempotency_key_reused', 'same key, same message but "from" left out: a different request, HM409');
SELECT is(pg_temp.submit(:'t_other', '{"to": "+14155550123", "body": "once", "from": "+15005550006"}', 'order-42') ->> 'replayed',
  'false', 'the same key for another tenant is another request');
SELECT is(pg_temp.submit(:'t', '{"to": "+14155550123", "body": "retry"}', 'key-of-invalid') ->> 'replayed',
  'false', 'a key whose first request was refused can be used for a valid request');
SELECT is(pg_temp.submit(:'t', '{"to": "+14155550123", "body": "retry"}', 'key-of-invalid') ->> 'replayed',
  'true', 'and is replayed after that');
SELECT is(pg_temp.submit(:'t', '{"to": "+14155550123", "body": "long key"}', repeat('k', 255)) ->> 'replayed',
  'false', 'a 255-character key is accepted');
UPDATE app.tenants SET default_sms_from = NULL WHERE id = :'t';
SELECT is(pg_temp.submit(:'t', '{"to": "+14155550123", "body": "retry"}', 'key-of-invalid') ->> 'replayed',
  'true', 'a replay is not re-validated against changed state (default sender removed)');

-- app.submit_messages: a batch, each item answered on its own ----------------------
UPDATE app.tenants SET default_sms_from = '+15005550006' WHERE id = :'t';
CREATE FUNCTION pg_temp.batch_refused(p_tenant uuid, p_messages jsonb) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_before jsonb := pg_temp.counts();
  v_result text;
BEGIN
  v_result := pg_temp.problem(format('SELECT private.submit_messages(%L, NULL, %L)', p_tenant, p_messages));
  RETURN v_result || CASE WHEN pg_temp.counts() <> v_before THEN ' +changed' ELSE '' END;
END
$$;
CREATE FUNCTION pg_temp.submit_batch(p_tenant uuid, p_messages jsonb, p_api_key uuid DEFAULT NULL)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_before jsonb := pg_temp.counts();
  v_r jsonb;
BEGIN
  v_r := private.submit_messages(p_tenant, p_api_key, p_messages);
  DELETE FROM last_result;
  INSERT INTO last_result VALUES (v_r, v_before, pg_temp.counts());
  RETURN v_r;
END
$$;
-- index, status, problem code (NULL when accepted or replayed) of each result.
CREATE FUNCTION pg_temp.outcomes(p_result jsonb) RETURNS TABLE (idx int, status int, code text)
LANGUAGE sql AS $$
  SELECT (x ->> 'index')::int, (x ->> 'status')::int, x #>> '{problem,code}'
    FROM jsonb_array_elements(p_result -> 'results') x ORDER BY (x ->> 'index')::int
$$;
CREATE FUNCTION pg_temp.many(p_n int, p_body text) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_agg(jsonb_build_object('to', '+14155550123', 'body', p_body || ' ' || i) ORDER BY i)
    FROM generate_series(1, p_n) i
$$;

SELECT is(pg_temp.batch_refused(:'t', '{"to": "+14155550123", "body": "hi"}'), 'HM422 invalid_request',
  'a batch that is not an array: HM422 invalid_request');
SELECT is(pg_temp.batch_refused(:'t', NULL), 'HM422 invalid_request', 'no batch: invalid_request');
SELECT is(pg_temp.batch_refused(:'t', '[]'), 'HM422 empty_batch', 'an empty batch: HM422 empty_batch');
SELECT is(pg_temp.batch_refused(:'t', pg_temp.many(1001, 'too many')), 'HM413 batch_too_large',
  '1001 items: HM413 batch_too_large, nothing accepted');
SELECT is(pg_temp.problem_hint(format('SELECT private.submit_messages(%L, NULL, %L)', :'t', pg_temp.many(1001, 'x'))),
  'Split the batch.', 'with a hint');
SELECT is(pg_temp.batch_refused(:'t_susp', '[{"to": "+14155550123", "body": "hi"}]'), 'HM403 tenant_suspended',
  'a suspended tenant: HM403 tenant_suspended');
SELECT is(pg_temp.batch_refused(gen_random_uuid(), '[{"to": "+14155550123", "body": "hi"}]'), 'HM404 tenant_not_found',
  'an unknown tenant: HM404 tenant_not_found');

-- Valid items are accepted, invalid ones answered with their problem.
SELECT pg_temp.submit_batch(:'t', $$[
    {"to": "+14155550123", "body": "batch one"},
    {"to": "call me", "body": "x"},
    {"to": "+14155550124", "body": "batch two", "from": "+15005550007"},
    {"to": "+14155550123", "body": ""},
    "just a string",
    {"to": "+14155550123", "body": "hi", "priority": 1},
    {"to": "+14155550125", "body": "batch three"}
  ]$$::jsonb, :'k') AS mixed \gset
SELECT is((:'mixed'::jsonb) - 'results', '{"accepted": 3, "replayed": 0, "rejected": 4}'::jsonb,
  'seven items: three accepted, four rejected');
SELECT results_eq(format('SELECT * FROM pg_temp.outcomes(%L)', :'mixed'),
  $$VALUES (0, 201, NULL::text), (1, 422, 'invalid_to'), (2, 201, NULL), (3, 422, 'empty_body'),
           (4, 422, 'invalid_request'), (5, 422, 'unknown_field'), (6, 201, NULL)$$,
  'one result per item, in order: 201 or the item''s problem code');
SELECT is((:'mixed'::jsonb) -> 'results' -> 1, jsonb_build_object('index', 1, 'status', 422, 'problem', jsonb_build_object(
    'status', 422, 'code', 'invalid_to', 'detail', '"to" is not a phone number: call me.',
    'hint', 'Use E.164 with country code, e.g. +14155550123.')),
  'a problem carries status, code, detail and hint');
SELECT is(pg_temp.delta(), '{"tenants": 0, "api_keys": 0, "messages": 3, "attempts": 3, "events": 3,
  "idempotency_keys": 0, "audit": 1, "jobs": 3, "job_log": 3, "receipts": 0, "receipt_queue": 0}'::jsonb,
  'three messages, attempts, events, jobs and job log rows; one audit row for the batch');
SELECT results_eq(format($$SELECT x -> 'message', private.message_json(m) FROM jsonb_array_elements(%L::jsonb -> 'results') x
                             JOIN app.messages m ON m.id = (x #>> '{message,id}')::uuid ORDER BY (x ->> 'index')::int$$, :'mixed'),
  $$SELECT private.message_json(m), private.message_json(m) FROM app.messages m
     WHERE body IN ('batch one', 'batch two', 'batch three') ORDER BY body = 'batch three', body$$,
  'each accepted item''s answer is its stored message');
SELECT results_eq($$SELECT to_address, from_address, body, status, tenant_id, api_key_id FROM app.messages
                     WHERE body LIKE 'batch %' ORDER BY to_address$$,
  format($$VALUES ('+14155550123', '+15005550006', 'batch one', 'queued', %L::uuid, %L::uuid),
                  ('+14155550124', '+15005550007', 'batch two', 'queued', %L::uuid, %L::uuid),
                  ('+14155550125', '+15005550006', 'batch three', 'queued', %L::uuid, %L::uuid)$$,
         :'t', :'k', :'t', :'k', :'t', :'k'),
  'normalised numbers, the default sender where none was given, queued');
SELECT set_eq($$SELECT convert_from(j.payload, 'UTF8')::jsonb ->> 'attempt_id' FROM pgqueuer.pgqueuer j
                 WHERE j.id > (SELECT max(id) - 3 FROM pgqueuer.pgqueuer)$$,
  $$SELECT a.id::text FROM app.message_attempts a JOIN app.messages m ON m.id = a.message_id WHERE m.body LIKE 'batch %'$$,
  'one send_sms job per accepted message, naming its attempt');
SELECT results_eq($$SELECT a.status, a.attempt_no, e.event_type, a.message_created_at = m.created_at
                      FROM app.messages m JOIN app.message_attempts a ON a.message_id = m.id
                      JOIN app.message_events e ON e.message_id = m.id WHERE m.body LIKE 'batch %'$$,
  $$VALUES ('pending', 1, 'accepted', true), ('pending', 1, 'accepted', true), ('pending', 1, 'accepted', true)$$,
  'each with a pending first attempt and an accepted event');
SELECT results_eq(format($$SELECT tenant_id, api_key_id, target_id, details FROM app.audit_log WHERE action = 'message.submit_batch'$$),
  format($$VALUES (%L::uuid, %L::uuid, NULL::text, '{"accepted": 3, "replayed": 0, "rejected": 4}'::jsonb)$$, :'t', :'k'),
  'the audit row counts the batch');

-- Idempotency keys per item.
SELECT $$[{"to": "+14155550123", "body": "keyed 1", "idempotency_key": "item-1"},
          {"to": "+14155550123", "body": "keyed 2", "idempotency_key": "item-2"}]$$ AS keyed \gset
SELECT pg_temp.submit_batch(:'t', :'keyed') AS keyed1 \gset
SELECT is((:'keyed1'::jsonb) - 'results', '{"accepted": 2, "replayed": 0, "rejected": 0}'::jsonb, 'a keyed batch: accepted');
SELECT is(pg_temp.delta() ->> 'idempotency_keys', '2', 'both keys are stored');
SELECT results_eq(format($$SELECT k.key, k.message_id, k.response FROM app.idempotency_keys k
                           WHERE k.tenant_id = %L AND k.key LIKE 'item-%%' ORDER BY k.key$$, :'t'),
  format($$SELECT 'item-' || (1 + (x ->> 'index')::int), (x #>> '{message,id}')::uuid, x -> 'message'
             FROM jsonb_array_elements(%L::jsonb -> 'results') x ORDER BY 1$$, :'keyed1'),
  'each key with its message and response');
SELECT is((SELECT array_agg(idempotency_key ORDER BY body) FROM app.messages WHERE body LIKE 'keyed %'),
  ARRAY['item-1', 'item-2'], 'the messages record their keys');
SELECT count(*) AS messages_before FROM app.messages \gset
SELECT pg_temp.submit_batch(:'t', :'keyed') AS keyed2 \gset
SELECT is((SELECT count(*) FROM app.messages), :messages_before::bigint, 'the same batch again creates no message');
SELECT is(pg_temp.delta(), '{"tenants": 0, "api_keys": 0, "messages": 0, "attempts": 0, "events": 0,
  "idempotency_keys": 0, "audit": 0, "jobs": 0, "job_log": 0, "receipts": 0, "receipt_queue": 0}'::jsonb,
  'nor anything else (no attempt, event, job or audit row)');
SELECT is((:'keyed2'::jsonb) - 'results', '{"accepted": 0, "replayed": 2, "rejected": 0}'::jsonb, 'two replayed');
SELECT is((:'keyed2'::jsonb) -> 'results',
  (SELECT jsonb_agg(x || '{"status": 200, "replayed": true}' ORDER BY (x ->> 'index')::int)
     FROM jsonb_array_elements((:'keyed1'::jsonb) -> 'results') x),
  'each answered 200 replayed, with its first response');
SELECT pg_temp.submit_batch(:'t', $$[{"to": "+14155550123", "body": "keyed 1, edited", "idempotency_key": "item-1"},
                                      {"to": "+14155550123", "body": "fresh"}]$$) AS reused \gset
SELECT results_eq(format('SELECT * FROM pg_temp.outcomes(%L)', :'reused'),
  $$VALUES (0, 409, 'idempotency_key_reused'), (1, 201, NULL::text)$$,
  'a key with another request: that item 409 idempotency_key_reused, the other accepted');
SELECT is(pg_temp.delta() ->> 'messages', '1', 'only the other item is written');
SELECT pg_temp.submit_batch(:'t', $$[{"to": "+14155550123", "body": "twin", "idempotency_key": "dup"},
                                      {"to": "+14155550123", "body": "twin", "idempotency_key": "dup"},
                                      {"to": "+14155550123", "body": "not a twin", "idempotency_key": "dup"}]$$) AS twins \gset
SELECT results_eq(format('SELECT * FROM pg_temp.outcomes(%L)', :'twins'),
  $$VALUES (0, 201, NULL::text), (1, 200, NULL), (2, 409, 'idempotency_key_reused')$$,
  'one key three times in a batch: accepted, then replayed (same request), then 409 (another request)');
SELECT is((:'twins'::jsonb) #> '{results,1,message}', (:'twins'::jsonb) #> '{results,0,message}',
  'the replay answers the first item''s message');
SELECT is(pg_temp.delta() - 'tenants' - 'api_keys' - 'receipts' - 'receipt_queue',
  '{"messages": 1, "attempts": 1, "events": 1, "idempotency_keys": 1, "audit": 1, "jobs": 1, "job_log": 1}'::jsonb,
  'one message, one key, one job');
SELECT is((SELECT count(*)::int FROM pgqueuer.pgqueuer j JOIN app.message_attempts a
             ON a.id = (convert_from(j.payload, 'UTF8')::jsonb ->> 'attempt_id')::uuid
           JOIN app.messages m ON m.id = a.message_id WHERE m.body = 'twin'), 1, 'and one send job for it');
SELECT pg_temp.submit(:'t', '{"to": "+14155550123", "body": "single"}', 'shared-key') AS single \gset
SELECT is(pg_temp.submit_batch(:'t', '[{"to": "+14155550123", "body": "single", "idempotency_key": "shared-key"}]') -> 'results' -> 0,
  jsonb_build_object('index', 0, 'status', 200, 'replayed', true, 'message', (:'single'::jsonb) -> 'message'),
  'a key first used by app.submit_message replays in a batch: one key space');
SELECT results_eq(format('SELECT * FROM pg_temp.outcomes(%L)', pg_temp.submit_batch(:'t', $$[
    {"to": "+14155550123", "body": "k", "idempotency_key": ""},
    {"to": "+14155550123", "body": "k", "idempotency_key": 42},
    {"to": "+14155550123", "body": "k", "idempotency_key": null}]$$)),
  $$VALUES (0, 422, 'invalid_idempotency_key'), (1, 422, 'invalid_idempotency_key'), (2, 201, NULL::text)$$,
  'an empty or non-string key: 422 invalid_idempotency_key; a null key is no key');
SELECT results_eq(format('SELECT * FROM pg_temp.outcomes(%L)', pg_temp.submit_batch(:'t_nofrom', $$[
    {"to": "+14155550123", "body": "k"}, {"to": "+14155550123", "body": "k", "from": "+15005550009"}]$$)),
  $$VALUES (0, 422, 'missing_from'), (1, 201, NULL::text)$$,
  'a tenant without default sender: missing_from unless the item has "from"');

-- 1000 items, the most a batch takes.
SELECT pg_temp.submit_batch(:'t', pg_temp.many(1000, 'bulk')) - 'results' AS bulk \gset
SELECT is(:'bulk'::jsonb, '{"accepted": 1000, "replayed": 0, "rejected": 0}'::jsonb, '1000 items: all accepted');
SELECT is(pg_temp.delta() - 'tenants' - 'api_keys' - 'receipts' - 'receipt_queue' - 'idempotency_keys',
  '{"messages": 1000, "attempts": 1000, "events": 1000, "audit": 1, "jobs": 1000, "job_log": 1000}'::jsonb,
  '1000 messages, attempts, events, jobs and log rows, one audit row');
SELECT ok(has_function_privilege('hermes_api', 'app.submit_messages(text,jsonb)', 'EXECUTE')
          AND NOT has_function_privilege('hermes_worker', 'app.submit_messages(text,jsonb)', 'EXECUTE'),
  'the API may submit batches, the workers may not');

-- app.submit_message / app.submit_messages: the token names the tenant and the actor --
SELECT r -> 'tenant' ->> 'id' AS t_tok, r -> 'api_key' ->> 'id' AS k_tok, r -> 'api_key' ->> 'token' AS tok
  FROM pg_temp.new_tenant('Token Co') r \gset
SELECT app.submit_message(:'tok', '{"to": "+14155550123", "body": "by token"}', 'tok-1') AS via_token \gset
SELECT results_eq(format($$SELECT tenant_id, api_key_id FROM app.messages WHERE id = %L$$,
                         (:'via_token'::jsonb) #>> '{message,id}'),
  format($$VALUES (%L::uuid, %L::uuid)$$, :'t_tok', :'k_tok'), 'the message belongs to the token''s tenant and key');
SELECT is((SELECT api_key_id::text FROM app.audit_log WHERE action = 'message.submit'
            AND target_id = (:'via_token'::jsonb) #>> '{message,id}'), :'k_tok', 'audited as the token''s key');
SELECT is(app.submit_message(:'tok', '{"to": "+14155550123", "body": "by token"}', 'tok-1') ->> 'replayed', 'true',
  'its idempotency keys are the token''s tenant''s');
SELECT is((app.submit_messages(:'tok', '[{"to": "+14155550123", "body": "b1"}, {"to": "x", "body": "b2"}]'))
            -> 'accepted', '1'::jsonb, 'the batch by token: per-item answers as before');
SELECT pg_temp.new_key(:'t_tok', 'reader', ARRAY['read']) ->> 'token' AS tok_reader \gset
SELECT pg_temp.counts() AS before_tok \gset
SELECT is(pg_temp.problem(format($$SELECT app.submit_message(%L, '{"to": "+14155550123", "body": "x"}')$$, :'tok_reader')),
  'HM403 insufficient_scope', 'a key without messages:write: HM403 insufficient_scope');
SELECT is(pg_temp.problem(format($$SELECT app.submit_messages(%L, '[{"to": "+14155550123", "body": "x"}]')$$, :'tok_reader')),
  'HM403 insufficient_scope', 'nor a batch');
SELECT is(pg_temp.problem($$SELECT app.submit_message('forged', '{"to": "+14155550123", "body": "x"}')$$),
  'HM401 invalid_api_key', 'an unknown token: HM401');
UPDATE app.tenants SET status = 'suspended' WHERE id = :'t_tok';
SELECT is(pg_temp.problem(format($$SELECT app.submit_message(%L, '{"to": "+14155550123", "body": "x"}')$$, :'tok')),
  'HM403 tenant_suspended', 'a suspended tenant''s key: HM403');
SELECT is(pg_temp.counts() - 'api_keys', :'before_tok'::jsonb - 'api_keys', 'the refusals wrote nothing');
SELECT ok(NOT has_function_privilege('hermes_api', 'private.submit_message(uuid,uuid,jsonb,text)', 'EXECUTE')
          AND NOT has_function_privilege('hermes_api', 'private.submit_messages(uuid,uuid,jsonb)', 'EXECUTE'),
  'the API cannot reach the tenant-id forms: it acts only for the key it presents');

-- Eligibility at acceptance -----------------------------------------------------------
-- An ineligible recipient: the message is stored as rejected with its reasons (201,
-- readable, replayed under its key), with no attempt and no job.
SELECT (pg_temp.new_tenant('Eligibility Co') -> 'tenant' ->> 'id') AS te \gset
SELECT pg_temp.opt(:'te', 'opt_out', '+14155550100', '{"channel": "sms"}') IS NOT NULL AS o \gset
SELECT pg_temp.counts() AS before_el \gset
SELECT private.submit_message(:'te', NULL, '{"to": "+14155550100", "body": "hi"}', 'el-1') AS rej \gset
SELECT results_eq(format($$SELECT (%L::jsonb) #>> '{message,status}', (%L::jsonb) #>> '{message,error_code}',
                                  (%L::jsonb) #> '{message,reasons}' -> 0 ->> 'code', (%L::jsonb) #>> '{message,completed_at}' IS NOT NULL$$,
                         :'rej', :'rej', :'rej', :'rej'),
  $$VALUES ('rejected', 'opted_out', 'opted_out', true)$$,
  'an opted-out recipient: the message answers status rejected, error_code and reasons opted_out, completed');
SELECT is(pg_temp.counts() - 'audit' - 'idempotency_keys', (:'before_el'::jsonb - 'audit' - 'idempotency_keys')
            || jsonb_build_object('messages', (:'before_el'::jsonb ->> 'messages')::int + 1,
                                  'events', (:'before_el'::jsonb ->> 'events')::int + 1,
                                  'attempts', (:'before_el'::jsonb ->> 'attempts')::int + 1),
  'one message, one event and its step''s attempt (rejected, with the reasons); no job');
SELECT results_eq(format($$SELECT event_type, status, error_code, details ->> 'stage', details -> 'reasons' -> 0 ->> 'code'
                             FROM app.message_events WHERE message_id = %L$$, :'rej'::jsonb #>> '{message,id}'),
  $$VALUES ('rejected', 'rejected', 'opted_out', 'accept', 'opted_out')$$, 'a rejected event with the stage and reasons');
SELECT is(private.submit_message(:'te', NULL, '{"to": "+14155550100", "body": "hi"}', 'el-1') -> 'replayed', 'true'::jsonb,
  'the same key replays the refusal');
SELECT is(private.submit_message(:'te', NULL, '{"to": "+14155550100", "body": "hi", "channel": "sms", "category": "transactional"}')
            #>> '{message,status}', 'rejected', 'an opt-out applies to transactional messages too');
SELECT is(private.submit_message(:'te', NULL, '{"to": "+14155550101", "body": "hi"}') #>> '{message,status}', 'queued',
  'another recipient is accepted');
SELECT is((SELECT array_agg(x -> 'message' ->> 'status' ORDER BY (x ->> 'index')::int)
             FROM jsonb_array_elements(private.submit_messages(:'te', NULL,
               '[{"to": "+14155550101", "body": "a"}, {"to": "+14155550100", "body": "b"}, {"to": "+14155550102", "body": "c"}]')
               -> 'results') x),
  ARRAY['queued', 'rejected', 'queued'], 'a batch: each item decided on its own');

-- Gathered single POSTs (app.submit_gathered): one call, each item answered and audited
-- as app.submit_message would answer it alone.
SELECT pg_temp.new_tenant('Gather Co') AS g \gset
SELECT (:'g'::jsonb) -> 'tenant' ->> 'id' AS tg, (:'g'::jsonb) -> 'api_key' ->> 'token' AS tg_tok \gset
SELECT max(id) AS last_audit_g FROM app.audit_log \gset
SELECT app.submit_gathered(:'tg_tok', '[{"request": {"to": "+14155550123", "body": "one"}, "key": "g-1"},
                                       {"request": {"to": "+14155550123", "body": ""}, "key": null},
                                       {"request": {"to": "+14155550124", "body": "two"}, "key": null},
                                       {"request": {"to": "+14155550123", "body": "one"}, "key": "g-1"}]') AS gr \gset
SELECT is((SELECT array_agg((x ->> 'status')::int ORDER BY (x ->> 'index')::int) FROM jsonb_array_elements(:'gr'::jsonb) x),
  ARRAY[201, 422, 201, 200], 'each item answered on its own: accepted, its problem, accepted, replayed (same key)');
SELECT is((:'gr'::jsonb) -> 1 -> 'problem' ->> 'code', 'empty_body', 'the bad item carries its problem (returned, not raised)');
SELECT is((SELECT array_agg(action || ':' || coalesce(details ->> 'idempotency_key', '-') ORDER BY id) FROM app.audit_log
            WHERE id > :last_audit_g),
  ARRAY['message.submit:g-1', 'message.submit:-'], 'one message.submit audit row per accepted item, with its key');
SELECT is((SELECT count(*)::int FROM app.messages WHERE tenant_id = :'tg'), 2, 'two messages');
SELECT is(pg_temp.problem(format($$SELECT app.submit_gathered(%L, '[{"request": {"to": "+14155550123", "body": "x"}}]')$$,
                                 :'tok_reader')), 'HM403 insufficient_scope', 'the key needs messages:write');

SELECT * FROM finish();
ROLLBACK;
