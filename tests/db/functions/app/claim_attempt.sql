-- app.claim_attempt: a worker's first call for a send job: send, reconcile, defer or skip.
BEGIN;
\ir ../../helpers.psql
SELECT plan(38);

SELECT (pg_temp.new_tenant('Claim Co') -> 'tenant' ->> 'id') AS t \gset
SELECT pg_temp.new_message(:'t', 'claim me') AS m1 \gset
SELECT pg_temp.attempt_of(:'m1') AS a1 \gset
SELECT count(*) AS jobs_before FROM pgqueuer.pgqueuer \gset

-- First claim: send.
SELECT app.claim_attempt(:'a1') AS c1 \gset
SELECT is((:'c1'::jsonb), jsonb_build_object(
    'action', 'send', 'attempt_id', :'a1'::uuid, 'claim_no', 1, 'message_id', :'m1'::uuid, 'provider', 'twilio',
    'to', '+14155550123', 'from', '+15005550006', 'body', 'claim me', 'first_claimed_at', now()),
  'the first claim says send, with claim_no 1 and what to send');
SELECT results_eq(format('SELECT status, claim_count, claimed_at FROM app.message_attempts WHERE id = %L', :'a1'),
  $$VALUES ('claimed', 1, now())$$, 'the attempt is claimed once');
SELECT is(pg_temp.message_status(:'m1'), 'sending', 'the message is sending');
SELECT results_eq(format($$SELECT event_type, status, details FROM app.message_events
                           WHERE message_id = %L AND event_type <> 'accepted'$$, :'m1'),
  $$VALUES ('claimed', 'sending', '{"claim_no": 1}'::jsonb)$$, 'a claimed event with claim_no 1');

-- A second claim inside the claim lease: the first worker may still be calling the
-- provider, so the claim is deferred to the end of the lease.
SELECT is(app.claim_attempt(:'a1'), '{"action": "defer", "reason": "claim_lease", "wait_seconds": 60.000000}'::jsonb,
  'a re-claim inside the lease (60 s): defer for the rest of the lease');
SELECT results_eq(format('SELECT status, claim_count, last_claimed_at FROM app.message_attempts WHERE id = %L', :'a1'),
  $$VALUES ('claimed', 1, now())$$, 'a deferred claim is not counted');
SELECT results_eq(format($$SELECT entrypoint, convert_from(payload, 'UTF8')::jsonb, execute_after FROM pgqueuer.pgqueuer
                           ORDER BY id DESC LIMIT 1$$),
  format($$VALUES ('send_sms', jsonb_build_object('attempt_id', %L::uuid), now() + interval '60 seconds')$$, :'a1'),
  'a send_sms job is scheduled for the end of the lease');
SELECT results_eq(format($$SELECT event_type, details FROM app.message_events
                           WHERE message_id = %L AND event_type = 'reclaim_deferred'$$, :'m1'),
  $$VALUES ('reclaim_deferred', '{"wait_seconds": 60.000000, "claim_no": 1}'::jsonb)$$,
  'a reclaim_deferred event');
UPDATE app.message_attempts SET last_claimed_at = now() - interval '45 seconds' WHERE id = :'a1';
SELECT is((app.claim_attempt(:'a1') ->> 'wait_seconds')::numeric, 15::numeric,
  '45 s into the lease: defer for the remaining 15 s');

-- Second claim after the lease (the first worker died or failed ambiguously): reconcile.
SELECT pg_temp.end_lease(:'a1') IS NULL AS e \gset
SELECT app.claim_attempt(:'a1') AS c2 \gset
SELECT is((:'c2'::jsonb) ->> 'action', 'reconcile', 'a re-claim after the lease says reconcile, never a blind resend');
SELECT is(((:'c2'::jsonb) ->> 'claim_no')::int, 2, 'with claim_no 2');
SELECT is(((:'c2'::jsonb) ->> 'first_claimed_at')::timestamptz, now(), 'and the time of the first claim');
SELECT results_eq(format('SELECT claim_count, claimed_at, last_claimed_at FROM app.message_attempts WHERE id = %L', :'a1'),
  $$VALUES (2, now(), now())$$, 'claim_count is 2 and the new claim starts a new lease');
SELECT is(pg_temp.events_of(:'m1'), ARRAY['accepted', 'claimed', 'reclaim_deferred', 'reclaim_deferred', 'reclaimed'],
  'a reclaimed event');
SELECT is((SELECT details FROM app.message_events WHERE message_id = :'m1' AND event_type = 'reclaimed'),
  '{"claim_no": 2}'::jsonb, 'reclaimed with claim_no 2');
UPDATE private.settings SET value = '0 seconds' WHERE key = 'claim_lease';
SELECT is(((app.claim_attempt(:'a1')) ->> 'claim_no')::int, 3, 'with claim_lease 0 a re-claim is never deferred: claim_no 3');
UPDATE private.settings SET value = '60 seconds' WHERE key = 'claim_lease';

-- After the hand-off: skip.
SELECT app.record_handoff(:'a1', 'SM-claim-1') IS NOT NULL AS h \gset
SELECT is(app.claim_attempt(:'a1'), '{"action": "skip", "reason": "attempt_handed_off"}'::jsonb,
  'after the hand-off a claim is skipped');
SELECT is((SELECT claim_count FROM app.message_attempts WHERE id = :'a1'), 3, 'and not counted');
SELECT is(pg_temp.message_status(:'m1'), 'sent', 'the message stays sent');

-- Unknown attempts.
SELECT is(app.claim_attempt(private.uuid7()), '{"action": "skip", "reason": "attempt_not_found"}'::jsonb,
  'an unknown attempt id: skip attempt_not_found');
SELECT is(app.claim_attempt(gen_random_uuid()), '{"action": "skip", "reason": "attempt_not_found"}'::jsonb,
  'a non-v7 id: skip attempt_not_found');
SELECT is(app.claim_attempt(:'m1'), '{"action": "skip", "reason": "attempt_not_found"}'::jsonb,
  'a message id is not an attempt id');

-- The tenant is suspended before the claim: the message is rejected, never sent.
SELECT pg_temp.new_message(:'t', 'suspend me') AS m2 \gset
SELECT pg_temp.attempt_of(:'m2') AS a2 \gset
SELECT pg_temp.new_message(:'t', 'claimed before suspension') AS m3 \gset
SELECT pg_temp.attempt_of(:'m3') AS a3 \gset
SELECT app.claim_attempt(:'a3') IS NOT NULL AS c3 \gset
SELECT pg_temp.end_lease(:'a3') IS NULL AS e \gset
UPDATE app.tenants SET status = 'suspended' WHERE id = :'t';
SELECT is(app.claim_attempt(:'a2'), '{"action": "skip", "reason": "tenant_suspended"}'::jsonb,
  'tenant suspended before the claim: skip tenant_suspended');
SELECT results_eq(format('SELECT status, error_code, claim_count FROM app.message_attempts WHERE id = %L', :'a2'),
  $$VALUES ('rejected', 'tenant_suspended', 0)$$, 'the attempt is rejected, unclaimed');
SELECT results_eq(format('SELECT status, error_code, error_message, completed_at FROM app.messages WHERE id = %L', :'m2'),
  $$VALUES ('rejected', 'tenant_suspended', 'The tenant was suspended before hand-off.', now())$$,
  'the message is rejected (terminal) with error_code tenant_suspended');
SELECT results_eq(format($$SELECT event_type, status, error_code FROM app.message_events
                           WHERE message_id = %L ORDER BY id$$, :'m2'),
  $$VALUES ('accepted', 'queued', NULL), ('rejected', 'rejected', 'tenant_suspended')$$,
  'a rejected event');
SELECT is(app.claim_attempt(:'a2'), '{"action": "skip", "reason": "attempt_rejected"}'::jsonb,
  'claiming it again: skip attempt_rejected');
SELECT is(pg_temp.events_of(:'m2'), ARRAY['accepted', 'rejected'], 'and no new event');
SELECT is(app.claim_attempt(:'a3') ->> 'action', 'reconcile',
  'an attempt claimed before the suspension is still reconciled (the provider may have it)');

-- Finished attempts.
UPDATE app.tenants SET status = 'active' WHERE id = :'t';
SELECT pg_temp.new_message(:'t', 'x') AS m4 \gset
SELECT pg_temp.attempt_of(:'m4') AS a4 \gset
SELECT app.claim_attempt(:'a4') IS NOT NULL AS c4 \gset
SELECT app.record_send_error(:'a4', 1, '21211', 'invalid number', 400) IS NOT NULL AS e4 \gset
SELECT is(app.claim_attempt(:'a4'), '{"action": "skip", "reason": "attempt_failed"}'::jsonb,
  'a failed attempt: skip attempt_failed');
SELECT app.record_receipt('twilio', :'a1', 'SM-claim-1', 'delivered') IS NOT NULL AS r1 \gset
SELECT is(app.claim_attempt(:'a1'), '{"action": "skip", "reason": "attempt_delivered"}'::jsonb,
  'a delivered attempt: skip attempt_delivered');

-- A transient send error ends the claim's lease: the retry reconciles at once.
SELECT pg_temp.new_message(:'t', 'retry me') AS m5 \gset
SELECT pg_temp.attempt_of(:'m5') AS a5 \gset
SELECT app.claim_attempt(:'a5') IS NOT NULL AS c5 \gset
SELECT app.record_send_error(:'a5', 1, '20503', 'Service Unavailable', 503) IS NOT NULL AS e5 \gset
SELECT is((SELECT last_claimed_at FROM app.message_attempts WHERE id = :'a5'), NULL::timestamptz,
  'after a transient send error the claim holds no lease');
SELECT app.claim_attempt(:'a5') AS c6 \gset
SELECT is((:'c6'::jsonb) ->> 'action', 'reconcile', 'so the retry is not deferred: reconcile at once');
SELECT results_eq(format('SELECT status, claim_count, claimed_at, last_claimed_at FROM app.message_attempts WHERE id = %L', :'a5'),
  $$VALUES ('claimed', 2, now(), now())$$, 'claim 2 starts a new lease; the first claim time is kept');

SELECT is((SELECT count(*) FROM pgqueuer.pgqueuer) - :jobs_before, 7::bigint,
  'claims enqueue nothing but the deferrals'' jobs (2, plus the submits of m2, m3, m4 and m5 and m5''s retry)');
SELECT is((SELECT count(*)::int FROM app.audit_log WHERE action LIKE 'attempt%'), 0, 'claims are not audited as commands');
SELECT ok((SELECT prosecdef FROM pg_proc WHERE oid = 'app.claim_attempt(uuid)'::regprocedure), 'SECURITY DEFINER');
SELECT ok(has_function_privilege('hermes_worker', 'app.claim_attempt(uuid)', 'EXECUTE')
          AND NOT has_function_privilege('hermes_api', 'app.claim_attempt(uuid)', 'EXECUTE'),
  'the workers may claim, the API may not');

SELECT * FROM finish();
ROLLBACK;
