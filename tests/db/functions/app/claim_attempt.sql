-- app.claim_attempt / app.claim_attempts: a worker's first call for a batch of send jobs:
-- one decision per distinct attempt (send, reconcile, defer or skip), each naming its
-- attempt_id; app.claim_attempt is element 0 of a one-element batch.
BEGIN;
\ir ../../helpers.psql
SELECT plan(71);
-- The claim lease alone first; the reconcile delay's deferral is tested at the end.
UPDATE private.settings SET value = '0 seconds' WHERE key = 'reconcile_delay';

SELECT (pg_temp.new_tenant('Claim Co') -> 'tenant' ->> 'id') AS t \gset
SELECT pg_temp.new_message(:'t', 'claim me') AS m1 \gset
SELECT pg_temp.attempt_of(:'m1') AS a1 \gset
SELECT count(*) AS jobs_before FROM pgqueuer.pgqueuer \gset

-- First claim: send.
SELECT app.claim_attempt(:'a1') AS c1 \gset
SELECT is((:'c1'::jsonb), jsonb_build_object(
    'action', 'send', 'attempt_id', :'a1'::uuid, 'claim_no', 1, 'message_id', :'m1'::uuid, 'provider', 'twilio',
    'to', '+14155550123', 'from', '+15005550006', 'body', 'claim me', 'first_claimed_at', now(), 'environment', 'test', 'provider_account_id', NULL,
    'channel', 'sms', 'content', jsonb_build_object('body', 'claim me'), 'step', 1),
  'the first claim says send, with claim_no 1 and what to send (the step''s channel, recipient, sender, content)');
SELECT results_eq(format('SELECT status, claim_count, claimed_at FROM app.message_attempts WHERE id = %L', :'a1'),
  $$VALUES ('claimed', 1, now())$$, 'the attempt is claimed once');
SELECT is(pg_temp.message_status(:'m1'), 'sending', 'the message is sending');
-- The worker marks the call begun (app.begin_calls; tests/db/functions/app/begin_calls.sql).
SELECT pg_temp.calling(:'a1') IS NOT NULL AS k1 \gset
SELECT results_eq(format($$SELECT event_type, status, details - 'rules' FROM app.message_events
                           WHERE message_id = %L AND event_type <> 'accepted'$$, :'m1'),
  $$VALUES ('claimed', 'sending', '{"claim_no": 1}'::jsonb)$$, 'a claimed event with claim_no 1');
SELECT is((SELECT details -> 'rules' FROM app.message_events WHERE event_type = 'claimed' ORDER BY id LIMIT 1),
  '{"eligibility": 1, "policy": 1, "quiet_hour_rules": "2026-12-02"}'::jsonb,
  'the first claim records the rule versions it decided under (the tenant''s policy version 1)');

-- A second claim inside the claim lease: the first worker may still be calling the
-- provider, so the claim is deferred to the end of the lease.
SELECT is(app.claim_attempt(:'a1'), jsonb_build_object('action', 'defer', 'reason', 'claim_lease', 'attempt_id', :'a1'::uuid,
                                                        'wait_seconds', 60.000000),
  'a re-claim inside the lease (60 s): defer for the rest of the lease');
SELECT results_eq(format('SELECT status, claim_count, last_claimed_at FROM app.message_attempts WHERE id = %L', :'a1'),
  $$VALUES ('claimed', 1, now())$$, 'a deferred claim is not counted');
SELECT results_eq(format($$SELECT entrypoint, convert_from(payload, 'UTF8')::jsonb, execute_after FROM pgqueuer.pgqueuer
                           ORDER BY id DESC LIMIT 1$$),
  format($$VALUES ('send', jsonb_build_object('attempt_id', %L::uuid), now() + interval '60 seconds')$$, :'a1'),
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
SELECT is(app.claim_attempt(:'a1'), jsonb_build_object('action', 'skip', 'reason', 'attempt_handed_off', 'attempt_id', :'a1'::uuid),
  'after the hand-off a claim is skipped');
SELECT is((SELECT claim_count FROM app.message_attempts WHERE id = :'a1'), 3, 'and not counted');
SELECT is(pg_temp.message_status(:'m1'), 'sent', 'the message stays sent');

-- Unknown attempts.
SELECT private.uuid7() AS unknown_v7, gen_random_uuid() AS unknown_v4 \gset
SELECT is(app.claim_attempt(:'unknown_v7'), jsonb_build_object('action', 'skip', 'reason', 'attempt_not_found', 'attempt_id', :'unknown_v7'::uuid),
  'an unknown attempt id: skip attempt_not_found');
SELECT is(app.claim_attempt(:'unknown_v4'), jsonb_build_object('action', 'skip', 'reason', 'attempt_not_found', 'attempt_id', :'unknown_v4'::uuid),
  'a non-v7 id: skip attempt_not_found');
SELECT is(app.claim_attempt(:'m1'), jsonb_build_object('action', 'skip', 'reason', 'attempt_not_found', 'attempt_id', :'m1'::uuid),
  'a message id is not an attempt id');

-- The tenant is suspended before the claim: the message is rejected, never sent.
SELECT pg_temp.new_message(:'t', 'suspend me') AS m2 \gset
SELECT pg_temp.attempt_of(:'m2') AS a2 \gset
SELECT pg_temp.new_message(:'t', 'claimed before suspension') AS m3 \gset
SELECT pg_temp.attempt_of(:'m3') AS a3 \gset
SELECT app.claim_attempt(:'a3') IS NOT NULL AS c3 \gset
SELECT pg_temp.calling(:'a3') IS NOT NULL AS k3 \gset
SELECT pg_temp.end_lease(:'a3') IS NULL AS e \gset
UPDATE app.tenants SET status = 'suspended' WHERE id = :'t';
SELECT is(app.claim_attempt(:'a2'), jsonb_build_object('action', 'skip', 'reason', 'tenant_suspended',
  'reasons', '[{"code": "tenant_suspended"}]'::jsonb, 'attempt_id', :'a2'::uuid),
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
SELECT is(app.claim_attempt(:'a2'), jsonb_build_object('action', 'skip', 'reason', 'attempt_rejected', 'attempt_id', :'a2'::uuid),
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
SELECT is(app.claim_attempt(:'a4'), jsonb_build_object('action', 'skip', 'reason', 'attempt_failed', 'attempt_id', :'a4'::uuid),
  'a failed attempt: skip attempt_failed');
SELECT app.record_receipt('twilio', :'a1', 'SM-claim-1', 'delivered') IS NOT NULL AS r1 \gset
SELECT app.apply_receipts() IS NOT NULL AS ap \gset
SELECT is(app.claim_attempt(:'a1'), jsonb_build_object('action', 'skip', 'reason', 'attempt_delivered', 'attempt_id', :'a1'::uuid),
  'a delivered attempt: skip attempt_delivered');

-- A transient send error ends the claim's lease: the retry reconciles at once.
SELECT pg_temp.new_message(:'t', 'retry me') AS m5 \gset
SELECT pg_temp.attempt_of(:'m5') AS a5 \gset
SELECT app.claim_attempt(:'a5') IS NOT NULL AS c5 \gset
SELECT pg_temp.calling(:'a5') IS NOT NULL AS k5 \gset
SELECT app.record_send_error(:'a5', 1, '20503', 'Service Unavailable', 503) IS NOT NULL AS e5 \gset
SELECT is((SELECT last_claimed_at FROM app.message_attempts WHERE id = :'a5'), NULL::timestamptz,
  'after a transient send error the claim holds no lease');
SELECT app.claim_attempt(:'a5') AS c6 \gset
SELECT is((:'c6'::jsonb) ->> 'action', 'reconcile', 'so the retry is not deferred: reconcile at once');
SELECT results_eq(format('SELECT status, claim_count, claimed_at, last_claimed_at FROM app.message_attempts WHERE id = %L', :'a5'),
  $$VALUES ('claimed', 2, now(), now())$$, 'claim 2 starts a new lease; the first claim time is kept');

SELECT is((SELECT count(*) FROM pgqueuer.pgqueuer) - :jobs_before, 7::bigint,
  'claims enqueue nothing but the deferrals'' jobs (2, plus the submits of m2, m3, m4 and m5 and m5''s retry)');
-- (An earlier check counted audit rows of an action nothing writes: it held whatever
-- the code did.) Every audit row here comes from the submits and the tenant's setup:
-- claims, deferrals, send errors and re-claims write none, under any action.
SELECT is_empty($$SELECT action FROM app.audit_log
                   WHERE action NOT IN ('tenant.create', 'api_key.create', 'policy.set', 'message.submit')$$,
  'claims are not audited as commands (their trail is message_events)');

-- app.claim_attempts: a batch of pending attempts, all sent.
SELECT pg_temp.new_message(:'t', 'batch 1') AS bm1 \gset
SELECT pg_temp.new_message(:'t', 'batch 2') AS bm2 \gset
SELECT pg_temp.new_message(:'t', 'batch 3') AS bm3 \gset
SELECT pg_temp.attempt_of(:'bm1') AS b1, pg_temp.attempt_of(:'bm2') AS b2, pg_temp.attempt_of(:'bm3') AS b3 \gset
SELECT count(*) AS jobs_before FROM pgqueuer.pgqueuer \gset
SELECT app.claim_attempts(ARRAY[:'b3', :'b1', :'b2']::uuid[]) AS batch \gset
SELECT is(jsonb_typeof(:'batch'::jsonb) || ':' || jsonb_array_length(:'batch'::jsonb), 'array:3',
  'three pending attempts: an array of three decisions');
SELECT set_eq(format($$SELECT d ->> 'action' AS action, (d ->> 'attempt_id')::uuid AS attempt_id, (d ->> 'claim_no')::int AS claim_no,
                              (d ->> 'message_id')::uuid AS message_id, d ->> 'provider' AS provider, d ->> 'to' AS to_,
                              d ->> 'from' AS from_, d ->> 'body' AS body, (d ->> 'first_claimed_at')::timestamptz AS first_claimed_at
                         FROM jsonb_array_elements(%L::jsonb) d$$, :'batch'),
  format($$VALUES ('send', %L::uuid, 1, %L::uuid, 'twilio', '+14155550123', '+15005550006', 'batch 1', now()),
                  ('send', %L::uuid, 1, %L::uuid, 'twilio', '+14155550123', '+15005550006', 'batch 2', now()),
                  ('send', %L::uuid, 1, %L::uuid, 'twilio', '+14155550123', '+15005550006', 'batch 3', now())$$,
         :'b1', :'bm1', :'b2', :'bm2', :'b3', :'bm3'),
  'each says send, with its attempt_id, claim_no 1 and what to send');
SELECT results_eq(format($$SELECT a.status, a.claim_count, a.claimed_at, m.status FROM app.message_attempts a
                           JOIN app.messages m ON m.id = a.message_id WHERE a.id IN (%L, %L, %L)$$, :'b1', :'b2', :'b3'),
  $$VALUES ('claimed', 1, now(), 'sending'), ('claimed', 1, now(), 'sending'), ('claimed', 1, now(), 'sending')$$,
  'the three attempts are claimed once, their messages sending');
SELECT set_eq(format($$SELECT attempt_id, event_type, status, details - 'rules' FROM app.message_events
                        WHERE attempt_id IN (%L, %L, %L) AND event_type <> 'accepted'$$, :'b1', :'b2', :'b3'),
  format($$VALUES (%L::uuid, 'claimed', 'sending', '{"claim_no": 1}'::jsonb), (%L::uuid, 'claimed', 'sending', '{"claim_no": 1}'::jsonb),
                  (%L::uuid, 'claimed', 'sending', '{"claim_no": 1}'::jsonb)$$, :'b1', :'b2', :'b3'),
  'one claimed event each');
SELECT is((SELECT count(*) FROM pgqueuer.pgqueuer), :jobs_before::bigint, 'a batch of sends enqueues no job');

-- A mixed batch: unknown, handed off, claimed inside the lease, suspended tenant, pending.
SELECT (pg_temp.new_tenant('Suspended Batch Co') -> 'tenant' ->> 'id') AS ts \gset
SELECT pg_temp.new_message(:'ts', 'never') AS sm \gset
SELECT pg_temp.attempt_of(:'sm') AS s1 \gset
UPDATE app.tenants SET status = 'suspended' WHERE id = :'ts';
SELECT pg_temp.handed_off(:'t', 'SM-batch-h') AS bh \gset
SELECT pg_temp.attempt_of(pg_temp.new_message(:'t', 'leased')) AS bl \gset
SELECT app.claim_attempt(:'bl') IS NOT NULL AS c \gset
UPDATE app.message_attempts SET last_claimed_at = now() - interval '20 seconds' WHERE id = :'bl';
SELECT pg_temp.attempt_of(pg_temp.new_message(:'t', 'fresh')) AS bp \gset
SELECT private.uuid7() AS bu \gset
SELECT max(id) AS last_job FROM pgqueuer.pgqueuer \gset
SELECT app.claim_attempts(ARRAY[:'bu', :'bh', :'bl', :'s1', :'bp', :'bp', :'bl']::uuid[]) AS mixed \gset
SELECT is(jsonb_array_length(:'mixed'::jsonb), 5, 'seven ids, two of them repeated: five decisions (a repeated id counts once)');
SELECT set_eq(format($$SELECT d ->> 'action' AS action, d ->> 'reason' AS reason, (d ->> 'attempt_id')::uuid AS attempt_id FROM jsonb_array_elements(%L::jsonb) d$$, :'mixed'),
  format($$VALUES ('skip', 'attempt_not_found', %L::uuid), ('skip', 'attempt_handed_off', %L::uuid),
                  ('defer', 'claim_lease', %L::uuid), ('skip', 'tenant_suspended', %L::uuid), ('send', NULL, %L::uuid)$$,
         :'bu', :'bh', :'bl', :'s1', :'bp'),
  'skip attempt_not_found, skip attempt_handed_off, defer claim_lease, skip tenant_suspended, send: each with its attempt_id');
SELECT is((SELECT (d ->> 'wait_seconds')::numeric FROM jsonb_array_elements(:'mixed'::jsonb) d WHERE d ->> 'action' = 'defer'),
  40::numeric, 'claimed 20 s ago: defer for the remaining 40 s');
SELECT results_eq(format($$SELECT entrypoint, status::text, convert_from(payload, 'UTF8')::jsonb, execute_after
                           FROM pgqueuer.pgqueuer WHERE id > %s$$, :last_job),
  format($$VALUES ('send', 'queued', jsonb_build_object('attempt_id', %L::uuid), now() + interval '40 seconds')$$, :'bl'),
  'one job, for the deferred attempt only, due when its lease ends (once, though listed twice)');
SELECT is((SELECT count(*)::int FROM pgqueuer.pgqueuer_log WHERE job_id > :last_job), 1, 'with its log row');
SELECT results_eq(format($$SELECT a.claim_count, e.details FROM app.message_attempts a
                           JOIN app.message_events e ON e.attempt_id = a.id AND e.event_type = 'reclaim_deferred'
                          WHERE a.id = %L$$, :'bl'),
  $$VALUES (1, '{"wait_seconds": 40.000000, "claim_no": 1}'::jsonb)$$, 'one reclaim_deferred event; the claim is not counted');
SELECT results_eq(format($$SELECT a.status, a.error_code, a.claim_count, m.status, m.error_code, m.completed_at
                           FROM app.message_attempts a JOIN app.messages m ON m.id = a.message_id WHERE a.id = %L$$, :'s1'),
  $$VALUES ('rejected', 'tenant_suspended', 0, 'rejected', 'tenant_suspended', now())$$,
  'the suspended tenant''s attempt and message are rejected (terminal), unclaimed');
SELECT is(pg_temp.events_of(:'sm'), ARRAY['accepted', 'rejected'], 'with a rejected event');
SELECT results_eq(format($$SELECT a.status, a.claim_count,
                                  (SELECT count(*)::int FROM app.message_events e WHERE e.attempt_id = a.id AND e.event_type = 'claimed')
                             FROM app.message_attempts a WHERE a.id = %L$$, :'bp'),
  $$VALUES ('claimed', 1, 1)$$, 'the pending one, listed twice, is claimed once with one claimed event');
SELECT results_eq(format('SELECT status, claim_count, provider_message_id FROM app.message_attempts WHERE id = %L', :'bh'),
  $$VALUES ('handed_off', 1, 'SM-batch-h')$$, 'the handed-off one is untouched');
SELECT is(app.claim_attempts('{}'::uuid[]), '[]'::jsonb, 'an empty batch: no decisions');
SELECT ok((SELECT prosecdef FROM pg_proc WHERE oid = 'app.claim_attempt(uuid)'::regprocedure), 'SECURITY DEFINER');
SELECT ok(has_function_privilege('hermes_worker', 'app.claim_attempt(uuid)', 'EXECUTE')
          AND has_function_privilege('hermes_worker', 'app.claim_attempts(uuid[])', 'EXECUTE')
          AND NOT has_function_privilege('hermes_api', 'app.claim_attempt(uuid)', 'EXECUTE')
          AND NOT has_function_privilege('hermes_api', 'app.claim_attempts(uuid[])', 'EXECUTE'),
  'the workers may claim, the API may not');

-- A receipt waiting in the inbox (the applier has not run) settles a re-claim: the
-- provider has the attempt, so it is recorded as handed off, never reconciled.
SELECT pg_temp.new_message(:'t', 'inbox first') AS mi \gset
SELECT pg_temp.attempt_of(:'mi') AS ai \gset
SELECT app.claim_attempt(:'ai') ->> 'action' AS first_action \gset
SELECT app.record_receipt('twilio', :'ai', 'SM-inbox', 'sent');
SELECT pg_temp.end_lease(:'ai');
SELECT is(app.claim_attempt(:'ai'),
  jsonb_build_object('action', 'skip', 'attempt_id', :'ai'::uuid, 'reason', 'attempt_handed_off'),
  'a re-claim with a receipt in the inbox: skip, the provider has it (no reconcile)');
SELECT results_eq(format('SELECT status, provider_message_id, claim_count FROM app.message_attempts WHERE id = %L', :'ai'),
  $$VALUES ('handed_off', 'SM-inbox', 1)$$, 'the hand-off is recorded from the receipt; no second claim');
SELECT is((SELECT count(*)::int FROM private.receipt_queue q JOIN app.receipts r ON r.id = q.receipt_id
             WHERE r.attempt_id = :'ai'), 1, 'the receipt itself still waits for the applier');

-- The compliance re-check at hand-off ---------------------------------------------------
-- An opt-out recorded after acceptance, before the claim: the claim rejects the message.
SELECT (pg_temp.new_tenant('Late Opt-out Co') -> 'tenant' ->> 'id') AS tl \gset
SELECT pg_temp.attempt_of(pg_temp.new_message(:'tl', 'to be stopped')) AS al \gset
SELECT pg_temp.attempt_of(pg_temp.new_message(:'tl', 'batch neighbour')) AS an \gset
SELECT pg_temp.attempt_of(pg_temp.new_message(:'tl', 'after an opt-in')) AS ao \gset
SELECT pg_temp.opt(:'tl', 'opt_out', '+14155550123') ->> 'status' AS opted \gset
SELECT app.claim_attempts(ARRAY[:'al', :'an']::uuid[]) AS cl \gset
SELECT is((SELECT array_agg(d ->> 'action' ORDER BY d ->> 'attempt_id') FROM jsonb_array_elements(:'cl'::jsonb) d),
  ARRAY['skip', 'skip'], 'both messages to the opted-out number are skipped');
SELECT is((SELECT d -> 'reasons' -> 0 ->> 'code' FROM jsonb_array_elements(:'cl'::jsonb) d WHERE d ->> 'attempt_id' = :'al'),
  'opted_out', 'with the reasons');
SELECT results_eq(format($$SELECT a.status, a.error_code, a.claim_count, m.status, m.error_code, m.reasons -> 0 ->> 'code'
                             FROM app.message_attempts a JOIN app.messages m ON m.id = a.message_id WHERE a.id = %L$$, :'al'),
  $$VALUES ('rejected', 'opted_out', 0, 'rejected', 'opted_out', 'opted_out')$$,
  'attempt and message rejected, never claimed');
SELECT results_eq(format($$SELECT details ->> 'stage', details -> 'reasons' -> 0 ->> 'code' FROM app.message_events
                             WHERE attempt_id = %L AND event_type = 'rejected'$$, :'al'),
  $$VALUES ('claim', 'opted_out')$$, 'a rejected event at stage claim');
SELECT pg_temp.opt(:'tl', 'opt_in', '+14155550123', jsonb_build_object('occurred_at', now() + interval '1 second')) ->> 'status' AS optin \gset
SELECT is(app.claim_attempt(:'ao') ->> 'action', 'send', 'after a newer opt-in the claim sends');
SELECT ok(EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()),
  'the claim holds the recipient''s address lock until it commits');

-- The sender, again at the claim (private.senders_allowed, the intake's rule): a step
-- whose sender was reassigned to another tenant after its intake is rejected, reason
-- sender_not_allowed, and the cascade moves on to the next step.
SELECT (pg_temp.new_tenant('Sender Co') -> 'tenant' ->> 'id') AS ts \gset
SELECT (pg_temp.new_tenant('Next Owner Co') -> 'tenant' ->> 'id') AS ts2 \gset
SELECT pg_temp.new_sender(:'ts', 'sms', '+14155550997') AS s97 \gset
SELECT private.submit_message(:'ts', NULL, '{"channels": [
  {"channel": "sms", "to": "+14155550123", "from": "+14155550997", "body": "from mine"},
  {"channel": "sms", "to": "+14155550123", "body": "from the shared default"}]}') #>> '{message,id}' AS ms \gset
SELECT private.update_sender(NULL, :'s97', jsonb_build_object('tenant_id', :'ts2')) ->> 'tenant_id' AS moved \gset
SELECT app.claim_attempt(pg_temp.attempt_of(:'ms')) AS cs \gset
SELECT is(ARRAY[(:'cs'::jsonb) ->> 'action', (:'cs'::jsonb) ->> 'reason'], ARRAY['skip', 'sender_not_allowed'],
  'a step whose sender was reassigned since its intake: skipped, reason sender_not_allowed');
SELECT results_eq(format($$SELECT attempt_no, status, error_code FROM app.message_attempts WHERE message_id = %L ORDER BY attempt_no$$, :'ms'),
  $$VALUES (1, 'rejected', 'sender_not_allowed'), (2, 'pending', NULL::text)$$,
  'the step is rejected and the cascade moves on to the next');
SELECT is(app.claim_attempt((SELECT id FROM app.message_attempts WHERE message_id = :'ms' AND attempt_no = 2)) ->> 'action',
  'send', 'the next step (the tenant''s own sender) is sent');
-- Suspended: the same.
SELECT private.submit_message(:'ts2', NULL, '{"to": "+14155550123", "from": "+14155550997", "body": "new owner"}')
         #>> '{message,id}' AS ms2 \gset
SELECT private.update_sender(NULL, :'s97', '{"status": "suspended"}') ->> 'status' AS susp \gset
SELECT is(app.claim_attempt(pg_temp.attempt_of(:'ms2')) ->> 'reason', 'sender_not_allowed',
  'a sender suspended since the intake: refused at the claim too');

-- The reconcile delay: a claimed attempt whose last call got no answer less than
-- reconcile_delay ago is deferred until then, not claimed (a claim would only be
-- told to wait by app.reconcile_attempt, and would count).
UPDATE private.settings SET value = '2 minutes' WHERE key = 'reconcile_delay';
SELECT pg_temp.new_message(:'t', 'no answer') AS m9 \gset
SELECT pg_temp.attempt_of(:'m9') AS a9 \gset
SELECT app.claim_attempt(:'a9') IS NOT NULL AS c9 \gset
SELECT pg_temp.calling(:'a9') IS NOT NULL AS k9 \gset
SELECT app.record_send_error(:'a9', 1, 'timeout', 'no answer', NULL) IS NOT NULL AS e9 \gset
SELECT is(app.claim_attempt(:'a9') - 'attempt_id',
  '{"action": "defer", "reason": "reconcile_delay", "wait_seconds": 120.000000}'::jsonb,
  'a stray job inside the reconcile delay: deferred to its end (reason reconcile_delay)');
SELECT is((SELECT claim_count FROM app.message_attempts WHERE id = :'a9'), 1, 'and not counted as a claim');
UPDATE app.message_attempts SET reconcile_after = now() - interval '1 second' WHERE id = :'a9';
SELECT is(app.claim_attempt(:'a9') ->> 'action', 'reconcile', 'after it: reconciled');

SELECT * FROM finish();
ROLLBACK;
