-- app.submit_message: validation (each refusal writes nothing), the one-transaction
-- acceptance (message, attempt, event, job, job log, audit) and idempotency.
BEGIN;
\ir ../../helpers.psql
SELECT plan(59);

SELECT r -> 'tenant' ->> 'id' AS t, r -> 'api_key' ->> 'id' AS k FROM pg_temp.new_tenant('Submit Co') r \gset
SELECT r -> 'tenant' ->> 'id' AS t_nofrom FROM pg_temp.new_tenant('No Sender Co', NULL) r \gset
SELECT r -> 'tenant' ->> 'id' AS t_other FROM pg_temp.new_tenant('Other Co') r \gset
SELECT r -> 'tenant' ->> 'id' AS t_susp FROM pg_temp.new_tenant('Suspended Co') r \gset
UPDATE app.tenants SET status = 'suspended' WHERE id = :'t_susp';

-- 'SQLSTATE DETAIL' of a refused submit, plus ' +changed' if any row count changed.
CREATE FUNCTION pg_temp.refused(p_tenant uuid, p_request jsonb, p_key text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_before jsonb := pg_temp.counts();
  v_result text;
BEGIN
  v_result := pg_temp.problem(format('SELECT app.submit_message(%L, NULL, %L, %L)', p_tenant, p_request, p_key));
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
  v_r := app.submit_message(p_tenant, p_api_key, p_request, p_key);
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
SELECT is(pg_temp.problem_hint(format($$SELECT app.submit_message(%L, NULL, '{"to": "+14155550123", "body": "hi", "x": 1}')$$, :'t')),
  'A message takes "to", "body" and optionally "from".', 'unknown_field has a hint');
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
SELECT (pg_temp.submit(:'t', '{"to": "+1 (415) 555-0123", "body": "Hello", "from": "+1 500-555-0007"}',
                       NULL, :'k') -> 'message' ->> 'id') AS m \gset
SELECT is(pg_temp.delta(), '{"tenants": 0, "api_keys": 0, "messages": 1, "attempts": 1, "events": 1,
  "idempotency_keys": 0, "audit": 1, "jobs": 1, "job_log": 1}'::jsonb,
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
  format($$VALUES ('send_sms', 'queued', jsonb_build_object('attempt_id', %L::uuid), now())$$, :'a'),
  'one queued send_sms job, due now, whose payload is {"attempt_id": ...} only');
SELECT results_eq($$SELECT l.job_id, l.status::text, l.entrypoint FROM pgqueuer.pgqueuer_log l$$,
  $$SELECT id, 'queued', 'send_sms' FROM pgqueuer.pgqueuer$$, 'one queued log row for the job');
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
  "idempotency_keys": 0, "audit": 0, "jobs": 0, "job_log": 0}'::jsonb,
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

SELECT * FROM finish();
ROLLBACK;
