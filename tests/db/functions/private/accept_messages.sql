-- private.accept_messages: the set-based intake behind app.submit_message and
-- app.submit_messages. Per item: validation, idempotency key (replay, 409, or a key
-- used twice in the batch), then every valid new message with its attempt, 'accepted'
-- event, key and send job. Returns one result per item, in order:
-- {index, status, message?, replayed?, problem?}. Audit rows are the callers' business.
BEGIN;
\ir ../../helpers.psql
SELECT plan(28);

SELECT r -> 'tenant' ->> 'id' AS t, r -> 'api_key' ->> 'id' AS k FROM pg_temp.new_tenant('Intake Co') r \gset
CREATE FUNCTION pg_temp.item(p_body text, p_key text DEFAULT NULL, p_to text DEFAULT '+14155550123') RETURNS jsonb
LANGUAGE sql AS $$ SELECT jsonb_build_object('request', jsonb_build_object('to', p_to, 'body', p_body), 'key', p_key) $$;
CREATE FUNCTION pg_temp.accept(p_items jsonb, p_default_from text DEFAULT '+15005550006') RETURNS jsonb
LANGUAGE sql AS $$
  SELECT private.accept_messages(current_setting('hermes_test.tenant')::uuid, p_default_from,
                                 current_setting('hermes_test.key')::uuid, p_items)
$$;
CREATE FUNCTION pg_temp.outcomes(p_results jsonb) RETURNS TABLE (idx int, status int, replayed boolean, code text)
LANGUAGE sql AS $$
  SELECT (x ->> 'index')::int, (x ->> 'status')::int, (x ->> 'replayed')::boolean, x #>> '{problem,code}'
    FROM jsonb_array_elements(p_results) WITH ORDINALITY e(x, n) ORDER BY n
$$;
SELECT set_config('hermes_test.tenant', :'t', true) IS NOT NULL AS s1, set_config('hermes_test.key', :'k', true) IS NOT NULL AS s2 \gset

SELECT pg_temp.counts() AS before \gset
SELECT is(pg_temp.accept('[]'), '[]'::jsonb, 'no items: no results');
SELECT is(pg_temp.counts(), :'before'::jsonb, 'and nothing written');

-- A batch: accepted items, a problem, a key.
SELECT pg_temp.accept(jsonb_build_array(pg_temp.item('first'), pg_temp.item('bad', NULL, 'nope'), pg_temp.item('keyed', 'key-1'),
                                        jsonb_build_object('request', '{"to": "+14155550123", "body": "x", "y": 1}'::jsonb),
                                        pg_temp.item('last'))) AS res \gset
SELECT results_eq(format('SELECT * FROM pg_temp.outcomes(%L)', :'res'),
  $$VALUES (0, 201, NULL::boolean, NULL::text), (1, 422, NULL, 'invalid_to'), (2, 201, NULL, NULL),
           (3, 422, NULL, 'unknown_field'), (4, 201, NULL, NULL)$$,
  'one result per item, in order, with its index: 201 or the problem');
SELECT is((:'res'::jsonb) -> 3, jsonb_build_object('index', 3, 'status', 422, 'problem', jsonb_build_object('status', 422,
    'code', 'unknown_field', 'detail', 'Unknown field(s): y.', 'hint', 'A message takes "to", "body" and optionally "from", "channel", "vertical", "category" (or "channels": [steps] and "contact_id").')),
  'a problem: status, code, detail, hint');
SELECT is((:'res'::jsonb) #> '{1,problem}' ? 'hint', true, 'with a hint where there is one');
SELECT is(((:'res'::jsonb) -> 0) - 'message', '{"index": 0, "status": 201}'::jsonb, 'an accepted item: index, status and message');
SELECT is(pg_temp.counts() - 'tenants' - 'api_keys' - 'receipts' - 'receipt_queue',
  ((:'before'::jsonb) - 'tenants' - 'api_keys' - 'receipts' - 'receipt_queue')
  || jsonb_build_object('messages', 3, 'attempts', 3, 'events', 3, 'idempotency_keys', 1, 'jobs', 3, 'job_log', 3),
  'three messages, attempts, accepted events, jobs and job log rows, one key; no audit row (the callers write it)');
SELECT results_eq(format($$SELECT x -> 'message', private.message_json(m), m.api_key_id, m.from_address, m.idempotency_key
                             FROM jsonb_array_elements(%L::jsonb) x JOIN app.messages m ON m.id = (x #>> '{message,id}')::uuid
                            ORDER BY (x ->> 'index')::int$$, :'res'),
  format($$SELECT private.message_json(m), private.message_json(m), %L::uuid, '+15005550006', idempotency_key
             FROM app.messages m ORDER BY body = 'last', body = 'keyed', body$$, :'k'),
  'each answer is its stored message, with the API key, the default sender and the key');
SELECT results_eq($$SELECT count(DISTINCT m.created_at)::int, bool_and(private.uuid7_time(m.id) = m.created_at),
                           bool_and(a.message_created_at = m.created_at AND private.uuid7_time(a.id) = m.created_at),
                           bool_and(a.status = 'pending' AND a.attempt_no = 1)
                      FROM app.messages m JOIN app.message_attempts a ON a.message_id = m.id$$,
  $$VALUES (1, true, true, true)$$,
  'one instant for the batch: every message and attempt id is a UUIDv7 of it; pending first attempts');
SELECT set_eq($$SELECT convert_from(payload, 'UTF8')::jsonb FROM pgqueuer.pgqueuer$$,
  $$SELECT jsonb_build_object('attempt_id', id) FROM app.message_attempts$$, 'one send_sms job per accepted attempt');
SELECT results_eq(format($$SELECT k.message_id, k.message_created_at, k.response FROM app.idempotency_keys k
                           WHERE k.tenant_id = %L AND k.key = 'key-1'$$, :'t'),
  format($$SELECT id, created_at, %L::jsonb FROM app.messages WHERE body = 'keyed'$$, (:'res'::jsonb) #> '{2,message}'),
  'the key is stored with its message and response');

-- Keys used before: replay (same request) or 409 (another one); both write nothing.
SELECT pg_temp.counts() AS before \gset
SELECT pg_temp.accept(jsonb_build_array(pg_temp.item('keyed', 'key-1'), pg_temp.item('changed', 'key-1'))) AS again \gset
SELECT results_eq(format('SELECT * FROM pg_temp.outcomes(%L)', :'again'),
  $$VALUES (0, 200, true, NULL::text), (1, 409, NULL, 'idempotency_key_reused')$$,
  'the same key: the same request replays (200), another is 409');
SELECT is((:'again'::jsonb) #> '{0,message}', (:'res'::jsonb) #> '{2,message}', 'the replay is the first response');
SELECT is((:'again'::jsonb) #> '{1,problem}', jsonb_build_object('status', 409, 'code', 'idempotency_key_reused',
    'detail', 'This Idempotency-Key was used with a different request.', 'hint', 'Use a new key for a new request.'),
  'the 409 problem');
SELECT is(pg_temp.counts(), :'before'::jsonb, 'neither writes anything');
SELECT is(pg_temp.accept(jsonb_build_array(pg_temp.item('keyed', 'key-1')), NULL) -> 0 ->> 'status', '200',
  'a replay is not re-validated (here: no default sender any more)');

-- A key used twice in one batch counts once.
SELECT pg_temp.accept(jsonb_build_array(pg_temp.item('twin', 'key-2'), pg_temp.item('twin', 'key-2'),
                                        pg_temp.item('other', 'key-2'))) AS twins \gset
SELECT results_eq(format('SELECT * FROM pg_temp.outcomes(%L)', :'twins'),
  $$VALUES (0, 201, NULL::boolean, NULL::text), (1, 200, true, NULL), (2, 409, NULL, 'idempotency_key_reused')$$,
  'accepted, then replayed (same request), then 409 (another request)');
SELECT is((:'twins'::jsonb) #> '{1,message}', (:'twins'::jsonb) #> '{0,message}', 'the replay answers the first item''s message');
SELECT is((SELECT count(*)::int FROM app.messages WHERE idempotency_key = 'key-2'), 1, 'one message for the key');

-- A key used twice in one batch whose first item is refused after validation (an
-- unknown contact): each use gets that refusal, none is answered without a status.
SELECT pg_temp.accept(jsonb_build_array(
    jsonb_build_object('request', '{"contact_id": "0f6c7a4e-52b1-4f7e-9a55-3f1b2c1d0e01", "body": "c"}'::jsonb, 'key', 'key-3'),
    jsonb_build_object('request', '{"contact_id": "0f6c7a4e-52b1-4f7e-9a55-3f1b2c1d0e01", "body": "c"}'::jsonb, 'key', 'key-3'),
    jsonb_build_object('request', '{"to": "+14155550123", "body": "fine"}'::jsonb, 'key', 'key-5'))) AS unknown \gset
SELECT is((SELECT count(*)::int FROM jsonb_array_elements(:'unknown'::jsonb) r WHERE r ->> 'status' IS NULL), 0,
  'every item has a status');
SELECT results_eq(format($q$SELECT (r ->> 'index')::int, (r ->> 'status')::int, r #>> '{problem,code}'
                              FROM jsonb_array_elements(%L::jsonb) r$q$, :'unknown'),
  $$VALUES (0, 422, 'unknown_contact'), (1, 422, 'unknown_contact'), (2, 201, NULL::text)$$,
  'unknown contacts refused on their own; the good item is accepted');

-- Keys that are not keys.
SELECT pg_temp.counts() AS before \gset
SELECT results_eq(format('SELECT * FROM pg_temp.outcomes(%L)', pg_temp.accept(jsonb_build_array(
    jsonb_build_object('request', '{"to": "+14155550123", "body": "k"}'::jsonb, 'key', ''),
    jsonb_build_object('request', '{"to": "+14155550123", "body": "k"}'::jsonb, 'key', repeat('k', 256)),
    jsonb_build_object('request', '{"to": "+14155550123", "body": "k"}'::jsonb, 'key', 7),
    jsonb_build_object('request', '{"to": "+14155550123", "body": ""}'::jsonb, 'key', 'key-of-invalid')))),
  $$VALUES (0, 422, NULL::boolean, 'invalid_idempotency_key'), (1, 422, NULL, 'invalid_idempotency_key'),
           (2, 422, NULL, 'invalid_idempotency_key'), (3, 422, NULL, 'empty_body')$$,
  'an empty, a 256-character and a non-string key: invalid_idempotency_key; an invalid request with a key: its problem');
SELECT is(pg_temp.counts(), :'before'::jsonb, 'none of them writes anything, not even the key');

-- Senders (the sender registry): every step's "from", given or the default, must be
-- the tenant's or, for a test tenant, a shared one; else the item alone is 422
-- sender_not_allowed (issue 19: tenant A sent as tenant B's number).
SELECT (pg_temp.new_tenant('Owner Co') -> 'tenant' ->> 'id') AS t_owner \gset
SELECT pg_temp.new_sender(:'t_owner', 'sms', '+14155550999') AS s_sms \gset
SELECT pg_temp.new_sender(:'t_owner', 'email', 'owner.example', 'domain') AS s_mail \gset
SELECT pg_temp.new_sender(:'t', 'sms', '+14155550998') AS s_mine \gset
SELECT pg_temp.counts() AS before \gset
SELECT pg_temp.accept(jsonb_build_array(
  jsonb_build_object('request', '{"to": "+14155550777", "from": "+14155550999", "body": "as the owner"}'::jsonb),
  jsonb_build_object('request', '{"to": "+14155550777", "from": "+14155550998", "body": "mine"}'::jsonb),
  jsonb_build_object('request', '{"channel": "email", "to": "a@b.example", "subject": "s", "body": "x",
                                  "from": "Owner <Sales@OWNER.example>"}'::jsonb),
  jsonb_build_object('request', '{"channels": [{"channel": "sms", "to": "+14155550777", "body": "x"},
                                               {"channel": "sms", "to": "+14155550777", "body": "y", "from": "+14155550999"}]}'::jsonb),
  jsonb_build_object('request', '{"to": "+14155550777", "body": "the default: shared, a test tenant may"}'::jsonb))) AS sx \gset
SELECT results_eq(format('SELECT * FROM pg_temp.outcomes(%L)', :'sx'),
  $$VALUES (0, 422, NULL::boolean, 'sender_not_allowed'), (1, 201, NULL, NULL::text), (2, 422, NULL, 'sender_not_allowed'),
           (3, 422, NULL, 'sender_not_allowed'), (4, 201, NULL, NULL)$$,
  'another tenant''s number, an address at its domain (any case), a cascade''s later step: 422 each; own and shared go');
SELECT is(ARRAY[(:'sx'::jsonb) #>> '{0,problem,detail}', (:'sx'::jsonb) #>> '{3,problem,detail}'],
  ARRAY['"from" +14155550999 is not a sender of yours.', 'Step 2 (sms): "from" +14155550999 is not a sender of yours.'],
  'the detail names the sender (and the step of a cascade), never whose it is');
SELECT ok((:'sx'::jsonb) #>> '{0,problem,hint}' LIKE 'Send from a number or address registered to you%', 'with a hint');
SELECT is((pg_temp.counts() ->> 'messages')::int - (:'before'::jsonb ->> 'messages')::int, 2,
  'only the two allowed messages are stored');

SELECT ok((SELECT NOT prosecdef FROM pg_proc WHERE oid = 'private.accept_messages(uuid,text,uuid,jsonb,boolean)'::regprocedure)
          AND NOT has_function_privilege('hermes_api', 'private.accept_messages(uuid,text,uuid,jsonb,boolean)', 'EXECUTE')
          AND NOT has_function_privilege('hermes_worker', 'private.accept_messages(uuid,text,uuid,jsonb,boolean)', 'EXECUTE'),
  'not SECURITY DEFINER, and no client role may call it');

SELECT * FROM finish();
ROLLBACK;
