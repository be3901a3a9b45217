-- app.begin_calls: the calling mark a worker records before it calls the providers of
-- a batch, and what app.claim_attempts does with a claim that never got that far.
BEGIN;
\ir ../../helpers.psql
SELECT plan(26);

SELECT (pg_temp.new_tenant('Calling Co') -> 'tenant' ->> 'id') AS t \gset
SELECT pg_temp.attempt_of(pg_temp.new_message(:'t', 'one')) AS a1 \gset
SELECT pg_temp.attempt_of(pg_temp.new_message(:'t', 'two')) AS a2 \gset
SELECT pg_temp.attempt_of(pg_temp.new_message(:'t', 'never claimed')) AS a0 \gset

-- The mark, under the current claim only.
SELECT app.claim_attempts(ARRAY[:'a1', :'a2']::uuid[]) IS NOT NULL AS c \gset
UPDATE app.message_attempts SET last_claimed_at = now() - interval '30 seconds' WHERE id = :'a1';
SELECT is(app.begin_calls(ARRAY[:'a2', :'a1', :'a0']::uuid[], ARRAY[1, 1, 1]),
  jsonb_build_array(least(:'a1'::uuid, :'a2'::uuid), greatest(:'a1'::uuid, :'a2'::uuid)),
  'both claimed attempts may be called (sorted); a pending one may not');
SELECT results_eq(format('SELECT calling_claim_no, last_claimed_at, status FROM app.message_attempts WHERE id = %L', :'a1'),
  $$VALUES (1, now(), 'claimed')$$, 'the mark names the claim and restarts its lease (the lease covers the call)');
SELECT is((SELECT calling_claim_no FROM app.message_attempts WHERE id = :'a0'), NULL::int,
  'the pending attempt is not marked');
SELECT is(app.begin_calls(ARRAY[:'a1']::uuid[], ARRAY[2]), '[]'::jsonb, 'a claim number that is not the current one: not called');
SELECT is(app.begin_calls('{}'::uuid[], '{}'::int[]), '[]'::jsonb, 'an empty batch: nothing');
SELECT is(pg_temp.problem($$SELECT app.begin_calls(ARRAY[private.uuid7()], '{}'::int[])$$),
  'HM422 begin_calls_mismatch', 'one claim number per attempt id, or HM422 begin_calls_mismatch');
SELECT is(pg_temp.events_of((SELECT message_id FROM app.message_attempts WHERE id = :'a1')), ARRAY['accepted', 'claimed'], 'the mark writes no event');

-- A marked claim that outlives its lease: the call may have reached the provider.
SELECT pg_temp.end_lease(:'a1');
SELECT is(app.claim_attempt(:'a1') ->> 'action', 'reconcile', 'marked, then the lease ran out: reconcile, never a blind resend');

-- An unmarked claim: the worker died before calling. Inside the lease it is deferred
-- (the worker may only be slow); after it, released and sent.
SELECT pg_temp.attempt_of(pg_temp.new_message(:'t', 'died before the call')) AS a3 \gset
SELECT app.claim_attempt(:'a3') IS NOT NULL AS c \gset
SELECT is(app.claim_attempt(:'a3') ->> 'action', 'defer', 'unmarked inside the lease: defer (the worker may be slow)');
SELECT pg_temp.end_lease(:'a3');
SELECT app.claim_attempt(:'a3') AS r3 \gset
SELECT is((:'r3'::jsonb) ->> 'action', 'send', 'unmarked after the lease: send (nothing can be at the provider)');
SELECT is(((:'r3'::jsonb) ->> 'claim_no')::int, 2, 'under claim 2');
SELECT results_eq(format('SELECT status, claim_count, calling_claim_no FROM app.message_attempts WHERE id = %L', :'a3'),
  $$VALUES ('claimed', 2, NULL::int)$$, 'claimed again, not marked yet');
SELECT is(pg_temp.events_of((SELECT message_id FROM app.message_attempts WHERE id = :'a3')),
  ARRAY['accepted', 'claimed', 'reclaim_deferred', 'released', 'reclaimed'], 'released, then reclaimed');
SELECT is((SELECT details FROM app.message_events WHERE attempt_id = :'a3' AND event_type = 'released'),
  '{"claim_no": 1, "reason": "never_called"}'::jsonb, 'the released event names the claim that never called');
SELECT is((SELECT count(*)::int FROM app.message_events WHERE attempt_id = :'a3' AND event_type = 'resend'), 0,
  'not a resend: nothing was ever sent');
-- The slow first worker reaches its mark after all: too late, it must not call.
SELECT is(app.begin_calls(ARRAY[:'a3']::uuid[], ARRAY[1]), '[]'::jsonb, 'the first claim''s late mark: not called');
SELECT is(app.begin_calls(ARRAY[:'a3']::uuid[], ARRAY[2]), jsonb_build_array(:'a3'::uuid), 'the second claim''s: called');

-- A released claim is checked like a first claim: an opt-out meanwhile rejects it.
SELECT (pg_temp.new_tenant('Calling Stop Co') -> 'tenant' ->> 'id') AS ts \gset
SELECT pg_temp.attempt_of(pg_temp.new_message(:'ts', 'opted out meanwhile')) AS a4 \gset
SELECT app.claim_attempt(:'a4') IS NOT NULL AS c \gset
SELECT pg_temp.opt(:'ts', 'opt_out', '+14155550123') ->> 'status' AS opted \gset
SELECT pg_temp.end_lease(:'a4');
SELECT is(app.claim_attempt(:'a4') ->> 'reason', 'opted_out', 'released, then refused: the recipient opted out');
SELECT is(pg_temp.attempt_status(:'a4'), 'rejected', 'the attempt is rejected, nothing sent');

-- A receipt in the inbox proves a hand-off even without a mark: recorded, not released.
SELECT pg_temp.attempt_of(pg_temp.new_message(:'t', 'receipt first')) AS a5 \gset
SELECT app.claim_attempt(:'a5') IS NOT NULL AS c \gset
SELECT app.record_receipt('twilio', :'a5', 'SM-calling-5', 'sent') IS NOT NULL AS r \gset
SELECT pg_temp.end_lease(:'a5');
SELECT is(app.claim_attempt(:'a5') ->> 'reason', 'attempt_handed_off', 'a receipt in the inbox: handed off, not released');

-- An answer that says the provider does not have it ends the call: the mark goes.
SELECT pg_temp.attempt_of(pg_temp.new_message(:'t', 'never reached')) AS a6 \gset
SELECT app.claim_attempt(:'a6') IS NOT NULL AS c \gset
SELECT pg_temp.calling(:'a6') IS NOT NULL AS k \gset
SELECT app.record_send_error(:'a6', 1, 'provider_not_configured', 'no adapter', NULL, NULL, false) IS NOT NULL AS e \gset
SELECT results_eq(format('SELECT status, calling_claim_no FROM app.message_attempts WHERE id = %L', :'a6'),
  $$VALUES ('pending', NULL::int)$$, 'never called (p_sent false): pending, no mark');
-- A timeout keeps it: the provider may have the message.
SELECT app.claim_attempt(:'a6') IS NOT NULL AS c \gset
SELECT pg_temp.calling(:'a6') IS NOT NULL AS k \gset
SELECT app.record_send_error(:'a6', 2, 'timeout', 'no answer', NULL) IS NOT NULL AS e \gset
SELECT results_eq(format('SELECT status, calling_claim_no FROM app.message_attempts WHERE id = %L', :'a6'),
  $$VALUES ('claimed', 2)$$, 'a timeout: claimed, still marked (the retry reconciles)');
-- (Once the reconcile delay after the timeout is over: before, a listing proves nothing.)
UPDATE app.message_attempts SET reconcile_after = now() - interval '1 second' WHERE id = :'a6';
SELECT is(app.claim_attempt(:'a6') ->> 'action', 'reconcile', 'and the retry reconciles');

-- A reconcile that finds nothing resends: that decision is the resend's mark.
SELECT is(app.reconcile_attempt(:'a6', 3, '[]') ->> 'action', 'send', 'nothing at the provider: resend');
SELECT results_eq(format('SELECT calling_claim_no, last_claimed_at FROM app.message_attempts WHERE id = %L', :'a6'),
  $$VALUES (3, now())$$, 'marked under the reconciling claim');

SELECT ok((SELECT prosecdef FROM pg_proc WHERE oid = 'app.begin_calls(uuid[],int[])'::regprocedure)
          AND has_function_privilege('hermes_worker', 'app.begin_calls(uuid[],int[])', 'EXECUTE')
          AND NOT has_function_privilege('hermes_api', 'app.begin_calls(uuid[],int[])', 'EXECUTE'),
  'SECURITY DEFINER; the workers may mark, the API may not');

SELECT * FROM finish();
ROLLBACK;
