-- app.record_send_error: errors the provider classes as permanent
-- (private.provider_error_is_permanent, from its HTTP status) fail the message;
-- transient ones end the claim's lease and schedule a reconcile-first retry with
-- backoff, up to 6 claims.
BEGIN;
\ir ../../helpers.psql
SELECT plan(60);

SELECT (pg_temp.new_tenant('Error Co') -> 'tenant' ->> 'id') AS t \gset
SELECT pg_temp.new_message(:'t') AS m1 \gset
SELECT pg_temp.attempt_of(:'m1') AS a1 \gset
SELECT pg_temp.new_message(:'t') AS m2 \gset
SELECT pg_temp.attempt_of(:'m2') AS a2 \gset
SELECT pg_temp.new_message(:'t') AS m3 \gset
SELECT pg_temp.attempt_of(:'m3') AS a3 \gset

-- Not the current claim.
SELECT is(app.record_send_error(private.uuid7(), 1, '20500', 'x', 500),
  '{"action": "skip", "reason": "attempt_not_found"}'::jsonb, 'an unknown attempt: skip attempt_not_found');
SELECT is(app.record_send_error(:'a1', 1, '20500', 'x', 500),
  '{"action": "skip", "reason": "not_current_claim"}'::jsonb, 'a pending (unclaimed) attempt: skip not_current_claim');
SELECT app.claim_attempt(:'a1') IS NOT NULL AS c \gset
SELECT is(app.record_send_error(:'a1', 2, '20500', 'x', 500),
  '{"action": "skip", "reason": "not_current_claim"}'::jsonb, 'a claim_no that is not the current one: skip');
SELECT is(app.record_send_error(:'a1', 2, '21211', 'x', 400),
  '{"action": "skip", "reason": "not_current_claim"}'::jsonb, 'a permanent error of a stale claim: skip too');
SELECT is(pg_temp.events_of(:'m1'), ARRAY['accepted', 'claimed'], 'a skipped error logs nothing');
SELECT is(pg_temp.attempt_status(:'a1'), 'claimed', 'and leaves the attempt claimed');

-- Permanent: the provider refused it (HTTP 400).
SELECT pg_temp.counts() AS before \gset
SELECT last_claimed_at AS a1_lease FROM app.message_attempts WHERE id = :'a1' \gset
SELECT is(app.record_send_error(:'a1', 1, '21211', 'The ''To'' number is not a valid phone number.', 400),
  '{"action": "failed", "error_code": "twilio:21211"}'::jsonb, 'HTTP 400: failed, error_code twilio:21211');
SELECT results_eq(format('SELECT status, error_code, error_message, last_claimed_at FROM app.message_attempts WHERE id = %L', :'a1'),
  format($$VALUES ('failed', 'twilio:21211', 'The ''To'' number is not a valid phone number.', %L::timestamptz)$$, :'a1_lease'),
  'the attempt failed (its last claim is kept)');
SELECT results_eq(format('SELECT status, error_code, error_message, provider, completed_at FROM app.messages WHERE id = %L', :'m1'),
  $$VALUES ('failed', 'twilio:21211', 'The ''To'' number is not a valid phone number.', 'twilio', now())$$,
  'the message failed (terminal) with error_code twilio:21211');
SELECT results_eq(format($$SELECT event_type, error_code, details
                           FROM app.message_events WHERE message_id = %L AND event_type = 'send_error'$$, :'m1'),
  $$VALUES ('send_error', 'twilio:21211',
            '{"permanent": true, "http_status": 400, "claim_no": 1,
              "message": "The ''To'' number is not a valid phone number."}'::jsonb)$$,
  'a send_error event: permanent, with the HTTP status, the claim and the message');
SELECT is(pg_temp.events_of(:'m1'), ARRAY['accepted', 'claimed', 'send_error'], 'and no other event');
SELECT is((SELECT count(*) FROM pgqueuer.pgqueuer)::int, (:'before'::jsonb ->> 'jobs')::int,
  'no retry job for a permanent error');
SELECT is(app.record_send_error(:'a1', 1, '21211', 'again', 400),
  '{"action": "skip", "reason": "not_current_claim"}'::jsonb, 'a failed attempt: skip');

-- Transient: retry, reconcile first.
SELECT app.claim_attempt(:'a2') IS NOT NULL AS c \gset
SELECT pg_temp.calling(:'a2') IS NOT NULL AS k \gset
SELECT max(id) AS last_job FROM pgqueuer.pgqueuer \gset
SELECT is(app.record_send_error(:'a2', 1, '20500', 'Internal Server Error', 500),
  '{"action": "retry_scheduled", "delay_seconds": 120.000000}'::jsonb,
  'HTTP 500 (Twilio may have it): retry_scheduled after the reconcile delay (2 min), not 1 s');
SELECT results_eq(format($$SELECT entrypoint, status::text, convert_from(payload, 'UTF8')::jsonb, execute_after
                           FROM pgqueuer.pgqueuer WHERE id > %s$$, :last_job),
  format($$VALUES ('send', 'queued', jsonb_build_object('attempt_id', %L::uuid), now() + interval '2 minutes')$$, :'a2'),
  'one send_sms job for the attempt, due in the future');
SELECT ok((SELECT execute_after > now() FROM pgqueuer.pgqueuer WHERE id > :last_job), 'execute_after is in the future');
SELECT is((SELECT count(*)::int FROM pgqueuer.pgqueuer_log WHERE job_id > :last_job), 1, 'with its log row');
SELECT results_eq(format('SELECT status, claim_count, claimed_at, last_claimed_at, error_code FROM app.message_attempts WHERE id = %L', :'a2'),
  $$VALUES ('claimed', 1, now(), NULL::timestamptz, NULL::text)$$,
  'the attempt stays claimed (the next claim reconciles), its lease ended (last_claimed_at NULL)');
SELECT is(pg_temp.message_status(:'m2'), 'sending', 'the message stays sending');
SELECT results_eq(format($$SELECT event_type, error_code, details FROM app.message_events
                           WHERE message_id = %L AND event_type IN ('send_error', 'retry_scheduled') ORDER BY id$$, :'m2'),
  $$VALUES ('send_error', 'twilio:20500',
            '{"permanent": false, "http_status": 500, "claim_no": 1, "message": "Internal Server Error"}'::jsonb),
           ('retry_scheduled', 'twilio:20500', '{"delay_seconds": 120.000000}'::jsonb)$$,
  'a send_error (transient, HTTP 500) and a retry_scheduled event');
-- (its retry is due once the reconcile delay is over: a claim before that defers)
UPDATE app.message_attempts SET reconcile_after = now() - interval '1 second' WHERE id = :'a2';
SELECT is(app.claim_attempt(:'a2') ->> 'action', 'reconcile',
  'the retry claims it again at once (no lease to wait out): reconcile');
SELECT is((app.record_send_error(:'a2', 2, '20429', 'Too Many Requests', 429, interval '30 seconds') ->> 'delay_seconds')::numeric,
  30::numeric, 'HTTP 429: Retry-After longer than the backoff is honoured');
SELECT is((SELECT execute_after FROM pgqueuer.pgqueuer ORDER BY id DESC LIMIT 1), now() + interval '30 seconds',
  'the job is due after Retry-After');
SELECT app.claim_attempt(:'a2') IS NOT NULL AS c \gset
SELECT is((app.record_send_error(:'a2', 3, NULL, NULL, NULL, interval '1 second') ->> 'delay_seconds')::numeric,
  120::numeric, 'no answer at all: a shorter Retry-After does not shorten the reconcile delay (2 min)');
SELECT results_eq(format($$SELECT error_code, details FROM app.message_events
                           WHERE message_id = %L AND event_type = 'send_error' ORDER BY id DESC LIMIT 1$$, :'m2'),
  $$VALUES ('twilio:unknown', '{"permanent": false, "http_status": null, "claim_no": 3, "message": null}'::jsonb)$$,
  'no error code: twilio:unknown; no HTTP status: http_status null, transient');

-- Classification by HTTP status: only 400, 413 and 422 are Twilio's final refusals.
SELECT set_config('hermes_test.tenant', :'t', true) IS NOT NULL AS s \gset
CREATE TEMP TABLE classified (http_status int, result jsonb, attempt_status text, last_claimed_at timestamptz,
                              message_status text, message_error text, permanent text);
DO $$
DECLARE
  v_tenant  uuid := current_setting('hermes_test.tenant')::uuid;
  v_message uuid;
  v_attempt uuid;
  v_result  jsonb;
BEGIN
  FOR i IN 1..9 LOOP
    v_message := pg_temp.new_message(v_tenant);
    v_attempt := pg_temp.attempt_of(v_message);
    PERFORM app.claim_attempt(v_attempt);
    v_result := app.record_send_error(v_attempt, 1, 'E', 'error',
                  (ARRAY[400, 413, 422, 401, 403, 404, 429, 503, NULL])[i]);
    INSERT INTO classified
    SELECT (ARRAY[400, 413, 422, 401, 403, 404, 429, 503, NULL])[i], v_result, a.status, a.last_claimed_at,
           m.status, m.error_code, e.details ->> 'permanent'
      FROM app.message_attempts a
      JOIN app.messages m ON m.id = a.message_id
      JOIN app.message_events e ON e.message_id = m.id AND e.event_type = 'send_error'
     WHERE a.id = v_attempt;
  END LOOP;
END
$$;
SELECT results_eq($$SELECT http_status, result ->> 'action', result ->> 'error_code', attempt_status,
                           last_claimed_at IS NULL, message_status, message_error, permanent
                      FROM classified ORDER BY http_status NULLS LAST$$,
  $$VALUES (400, 'failed', 'twilio:E', 'failed', false, 'failed', 'twilio:E', 'true'),
           (401, 'retry_scheduled', NULL, 'claimed', true, 'sending', NULL, 'false'),
           (403, 'retry_scheduled', NULL, 'claimed', true, 'sending', NULL, 'false'),
           (404, 'retry_scheduled', NULL, 'claimed', true, 'sending', NULL, 'false'),
           (413, 'failed', 'twilio:E', 'failed', false, 'failed', 'twilio:E', 'true'),
           (422, 'failed', 'twilio:E', 'failed', false, 'failed', 'twilio:E', 'true'),
           (429, 'retry_scheduled', NULL, 'claimed', true, 'sending', NULL, 'false'),
           (503, 'retry_scheduled', NULL, 'claimed', true, 'sending', NULL, 'false'),
           (NULL, 'retry_scheduled', NULL, 'claimed', true, 'sending', NULL, 'false')$$,
  '400, 413, 422 fail the message; 401, 403, 404, 429, 503 and no answer are retried with the lease ended');

-- Exponential backoff, then provider_unavailable after 6 claims.
CREATE TEMP TABLE outcomes (claim_no int, result jsonb);
SELECT set_config('hermes_test.attempt', :'a3', true) IS NOT NULL AS s \gset
DO $$
DECLARE
  v_attempt uuid := current_setting('hermes_test.attempt')::uuid;
  v_claim jsonb;
BEGIN
  FOR i IN 1..6 LOOP
    v_claim := app.claim_attempt(v_attempt);
    INSERT INTO outcomes VALUES ((v_claim ->> 'claim_no')::int,
      app.record_send_error(v_attempt, (v_claim ->> 'claim_no')::int, '20429', 'Too Many Requests', 429));
  END LOOP;
END
$$;
SELECT results_eq('SELECT claim_no, result ->> ''action'', (result ->> ''delay_seconds'')::numeric FROM outcomes ORDER BY claim_no',
  $$VALUES (1, 'retry_scheduled', 1::numeric), (2, 'retry_scheduled', 2), (3, 'retry_scheduled', 4),
           (4, 'retry_scheduled', 8), (5, 'retry_scheduled', 16), (6, 'failed', NULL)$$,
  'each answered transient error (429) ends the lease, so every retry claims at once: backoff 1, 2, 4, 8, 16 s; the 6th claim fails');
SELECT is((SELECT result FROM outcomes WHERE claim_no = 6), '{"action": "failed", "error_code": "provider_unavailable"}'::jsonb,
  'after 6 claims: failed, provider_unavailable');
SELECT results_eq(format('SELECT status, error_code, error_message FROM app.messages WHERE id = %L', :'m3'),
  $$VALUES ('failed', 'provider_unavailable', 'Too Many Requests')$$,
  'the message failed with error_code provider_unavailable');
SELECT results_eq(format('SELECT status, error_code, claim_count FROM app.message_attempts WHERE id = %L', :'a3'),
  $$VALUES ('failed', 'provider_unavailable', 6)$$, 'the attempt failed after 6 claims');
SELECT results_eq(format($$SELECT error_code, details ->> 'permanent', (details ->> 'http_status')::int
                           FROM app.message_events WHERE message_id = %L AND event_type = 'send_error' ORDER BY id$$, :'m3'),
  $$VALUES ('twilio:20429', 'false', 429), ('twilio:20429', 'false', 429), ('twilio:20429', 'false', 429),
           ('twilio:20429', 'false', 429), ('twilio:20429', 'false', 429), ('twilio:20429', 'false', 429)$$,
  'six transient send_error events keep the provider''s code and HTTP status');
SELECT is((SELECT count(*)::int FROM app.message_events WHERE message_id = :'m3' AND event_type = 'retry_scheduled'),
  5, 'five retry_scheduled events');
SELECT is((SELECT count(*)::int FROM pgqueuer.pgqueuer WHERE convert_from(payload, 'UTF8')::jsonb ->> 'attempt_id' = :'a3'),
  6, 'five retry jobs (plus the submit''s job), none after the failure');
SELECT is(app.claim_attempt(:'a3'), jsonb_build_object('action', 'skip', 'reason', 'attempt_failed', 'attempt_id', :'a3'::uuid),
  'no 7th claim');

-- A permanent error on a re-claim fails at once (no backoff left to run).
SELECT pg_temp.new_message(:'t') AS m5 \gset
SELECT pg_temp.attempt_of(:'m5') AS a5 \gset
SELECT app.claim_attempt(:'a5') IS NOT NULL AS c \gset
SELECT app.record_send_error(:'a5', 1, '20500', 'x', 500) IS NOT NULL AS e \gset
SELECT is(app.claim_attempt(:'a5') ->> 'claim_no', '2', 'a re-claim after a transient error');
SELECT is(app.record_send_error(:'a5', 2, '21610', 'Attempt to send to unsubscribed recipient', 400),
  '{"action": "failed", "error_code": "twilio:21610"}'::jsonb, 'then HTTP 400 on claim 2: failed, twilio:21610');
SELECT is(pg_temp.message_status(:'m5'), 'failed', 'the message failed');
-- 21610 means the recipient opted out of this sender: recorded as consent.
SELECT results_eq($$SELECT address, kind, channel, scope, source, evidence ->> 'error_code' FROM app.consent_events$$,
  $$VALUES ('+14155550123', 'opt_out', 'sms', 'tenant', 'provider_error', '21610')$$,
  'Twilio 21610 records an opt-out (source provider_error) for the recipient');
SELECT is((SELECT evidence ->> 'attempt_id' FROM app.consent_events), :'a5', 'naming the attempt');
SELECT is(pg_temp.verdict(:'t', '+14155550123'), 'opted_out', 'so nothing more goes to them');

-- FCM UNREGISTERED: the token is dead -- the push fails and the token is listed.
SELECT (private.submit_message(:'t', NULL, '{"channel": "push", "to": "dead-token-0123456789abcdef", "body": "hi"}')
        -> 'message' ->> 'id') AS m6 \gset
SELECT pg_temp.attempt_of(:'m6') AS a6 \gset
SELECT app.claim_attempt(:'a6') IS NOT NULL AS c \gset
SELECT is(app.record_send_error(:'a6', 1, 'UNREGISTERED', 'Requested entity was not found.', 404),
  '{"action": "failed", "error_code": "fcm:UNREGISTERED"}'::jsonb, 'FCM 404 UNREGISTERED: failed');
SELECT results_eq($$SELECT list, action, source, reason FROM app.suppression_events WHERE address = 'dead-token-0123456789abcdef'$$,
  $$VALUES ('hard_bounce', 'add', 'bounce', 'fcm UNREGISTERED')$$, 'and the token is on the tenant''s hard_bounce list');
SELECT is(pg_temp.verdict(:'t', 'dead-token-0123456789abcdef', 'push'), 'suppressed', 'so no push goes to it again');
SELECT (private.submit_message(:'t', NULL, '{"channel": "push", "to": "mismatch-token-0123456789ab", "body": "hi"}')
        -> 'message' ->> 'id') AS m7 \gset
SELECT pg_temp.attempt_of(:'m7') AS a7 \gset
SELECT app.claim_attempt(:'a7') IS NOT NULL AS c \gset
SELECT is(app.record_send_error(:'a7', 1, 'SENDER_ID_MISMATCH', 'SenderId mismatch', 403) || jsonb_build_object(
            'listed', EXISTS (SELECT 1 FROM app.suppression_events WHERE address = 'mismatch-token-0123456789ab')),
  '{"action": "failed", "error_code": "fcm:SENDER_ID_MISMATCH", "listed": false}'::jsonb,
  'FCM 403 SENDER_ID_MISMATCH: failed by its code (not a credentials 403), the token not listed');

-- Never called (no adapter, account or sender here): pending again, so the retry sends
-- without waiting for a receipt (even at a provider that cannot be asked).
SELECT (private.submit_message(:'t', NULL, '{"channel": "push", "to": "never-called-0123456789ab", "body": "hi"}')
        -> 'message' ->> 'id') AS m8 \gset
SELECT pg_temp.attempt_of(:'m8') AS a8 \gset
SELECT app.claim_attempt(:'a8') IS NOT NULL AS c \gset
SELECT is(app.record_send_error(:'a8', 1, 'provider_not_configured', 'no adapter', NULL, NULL, false) ->> 'action',
  'retry_scheduled', 'never called: a retry');
SELECT is(pg_temp.attempt_status(:'a8'), 'pending', 'and the attempt is pending again: the retry sends');

-- Failover: the tenant routes SMS through Vonage, then Twilio.
SELECT (pg_temp.new_tenant('Failover Co') -> 'tenant' ->> 'id') AS tf \gset
SELECT private.set_tenant_policy(:'tf', NULL, '{"providers": {"sms": ["vonage", "twilio"]}}') IS NOT NULL AS p \gset
SELECT pg_temp.new_message(:'tf', 'fail over') AS mf \gset
SELECT pg_temp.attempt_of(:'mf') AS af \gset
SELECT is((SELECT provider FROM app.message_attempts WHERE id = :'af'), 'vonage', 'routed to the first provider');
SELECT app.claim_attempt(:'af') IS NOT NULL AS c \gset
SELECT is(app.record_send_error(:'af', 1, '5', 'Internal Error', 200) ->> 'action', 'retry_scheduled',
  'Vonage refuses once (status 5, answered): retried at Vonage first');
SELECT app.claim_attempt(:'af') IS NOT NULL AS c \gset
SELECT is(app.record_send_error(:'af', 2, 'http_500', 'Internal Server Error', 500),
  '{"action": "failover", "provider": "twilio"}'::jsonb, 'the second refusal: failover to the next provider');
SELECT results_eq(format('SELECT provider, status, claim_count FROM app.message_attempts WHERE id = %L', :'af'),
  $$VALUES ('twilio', 'pending', 2)$$, 'the step is Twilio''s now, pending (Vonage did not take it)');
SELECT results_eq(format($$SELECT details ->> 'from', details ->> 'to', error_code FROM app.message_events
                           WHERE message_id = %L AND event_type = 'failover'$$, :'mf'),
  $$VALUES ('vonage', 'twilio', 'vonage:http_500')$$, 'a failover event');
SELECT is(app.claim_attempt(:'af') ->> 'action', 'send', 'and the next claim sends it through Twilio');
SELECT is(app.record_send_error(:'af', 3, 'http_500', 'x', 500) ->> 'action', 'retry_scheduled',
  'the last provider: no failover, retried');
-- A timeout never fails over (the provider may have it).
SELECT pg_temp.new_message(:'tf', 'timeout') AS mt \gset
SELECT pg_temp.attempt_of(:'mt') AS at \gset
SELECT app.claim_attempt(:'at') IS NOT NULL AS c \gset
SELECT app.record_send_error(:'at', 1, 'ReadTimeout', 'no answer', NULL) IS NOT NULL AS e \gset
SELECT pg_temp.end_lease(:'at');
SELECT (app.claim_attempt(:'at') ->> 'claim_no')::int AS ct \gset
SELECT is(app.record_send_error(:'at', :ct, 'ReadTimeout', 'no answer', NULL) ->> 'action' || ':'
          || (SELECT provider || ':' || status FROM app.message_attempts WHERE id = :'at'),
  'retry_scheduled:vonage:claimed', 'two timeouts: still Vonage''s, still claimed (never failed over)');
-- No free connection in this worker (workers/providers/base.py Slots): never sent, but
-- not the provider's doing either -- retried at the same provider, never failed over.
SELECT pg_temp.new_message(:'tf', 'busy') AS mb \gset
SELECT pg_temp.attempt_of(:'mb') AS ab \gset
SELECT app.claim_attempt(:'ab') IS NOT NULL AS c \gset
SELECT is(app.record_send_error(:'ab', 1, 'no_free_connection', 'no free connection', NULL, NULL, false) ->> 'action',
  'retry_scheduled', 'no free connection: a retry, not a failover');
SELECT results_eq(format('SELECT provider, status FROM app.message_attempts WHERE id = %L', :'ab'),
  $$VALUES ('vonage', 'pending')$$, 'still Vonage''s, pending: the retry sends it');

-- The error message is capped.
SELECT (private.submit_message(:'t', NULL, '{"to": "+14155550124", "body": "capped"}') -> 'message' ->> 'id') AS m4 \gset
SELECT pg_temp.attempt_of(:'m4') AS a4 \gset
SELECT app.claim_attempt(:'a4') IS NOT NULL AS c \gset
SELECT app.record_send_error(:'a4', 1, '21211', repeat('x', 2000), 400) IS NOT NULL AS e \gset
SELECT is((SELECT length(error_message) FROM app.messages WHERE id = :'m4'), 500, 'error messages are cut to 500 characters');
SELECT is((SELECT length(details ->> 'message') FROM app.message_events WHERE message_id = :'m4' AND event_type = 'send_error'),
  500, 'in the event too');
SELECT ok(has_function_privilege('hermes_worker', 'app.record_send_error(uuid,integer,text,text,integer,interval,boolean)', 'EXECUTE'),
  'the workers may record send errors');
SELECT ok(NOT has_function_privilege('hermes_api', 'app.record_send_error(uuid,integer,text,text,integer,interval,boolean)', 'EXECUTE'),
  'the API may not');

SELECT * FROM finish();
ROLLBACK;
