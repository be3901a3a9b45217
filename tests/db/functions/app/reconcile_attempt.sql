-- app.reconcile_attempt: after a re-claim, the worker passes the provider's listing of
-- recent messages from the sender to the recipient; SQL decides which one is this
-- attempt's (same body, created no earlier than 5 minutes before the first claim, SID
-- not recorded on another attempt): exactly one -> record it; none -> one resend;
-- several -> wait for the status callbacks, and fail after 6 claims. Only the latest
-- claim may reconcile. The listed status is recorded as the hand-off's answer and
-- reaches attempt and message through the receipt inbox (app.apply_receipts).
BEGIN;
\ir ../../helpers.psql
SELECT plan(69);

SELECT (pg_temp.new_tenant('Reconcile Co') -> 'tenant' ->> 'id') AS t \gset
SELECT pg_temp.new_message(:'t', 'one') AS m1 \gset
SELECT pg_temp.attempt_of(:'m1') AS a1 \gset
SELECT pg_temp.new_message(:'t', 'two') AS m2 \gset
SELECT pg_temp.attempt_of(:'m2') AS a2 \gset
SELECT pg_temp.new_message(:'t', 'three') AS m3 \gset
SELECT pg_temp.attempt_of(:'m3') AS a3 \gset
-- Each claimed and called, then re-claimed after its lease ran out: claim_no 2.
CREATE FUNCTION pg_temp.claim_twice(p_attempt uuid) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  PERFORM app.claim_attempt(p_attempt);
  PERFORM pg_temp.calling(p_attempt);  -- the worker began the call (and died, or timed out)
  PERFORM pg_temp.end_lease(p_attempt);
  RETURN (app.claim_attempt(p_attempt) ->> 'claim_no')::int;
END
$$;
-- A listing entry as the worker passes it (Twilio's sid, status, body, date_created).
CREATE FUNCTION pg_temp.candidate(p_sid text, p_status text, p_body text, p_created timestamptz)
RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('sid', p_sid, 'status', p_status, 'body', p_body,
                            'date_created', to_char(p_created AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'))
$$;
-- Whether this transaction holds the advisory lock of a provider id.
CREATE FUNCTION pg_temp.holds_sid_lock(p_sid text) RETURNS boolean LANGUAGE sql AS $$
  SELECT EXISTS (SELECT 1 FROM pg_locks
                  WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted AND objsubid = 1
                    AND ((classid::bigint << 32) | objid::bigint) = hashtextextended('twilio:' || p_sid, 0))
$$;
SELECT pg_temp.claim_twice(:'a1') AS c1, pg_temp.claim_twice(:'a2') AS c2, pg_temp.claim_twice(:'a3') AS c3 \gset
SELECT is(ARRAY[:c1, :c2, :c3], ARRAY[2, 2, 2], 'three attempts at claim_no 2');

-- A stale claim cannot reconcile.
SELECT is(app.reconcile_attempt(:'a1', 1, jsonb_build_array(pg_temp.candidate('SM-R1', 'sent', 'one', now()))),
  '{"action": "skip", "reason": "stale_claim"}'::jsonb, 'claim_no 1 after claim 2: skip stale_claim');
SELECT results_eq(format('SELECT status, provider_message_id FROM app.message_attempts WHERE id = %L', :'a1'),
  $$VALUES ('claimed', NULL::text)$$, 'a stale reconcile changes nothing');
SELECT is(pg_temp.events_of(:'m1'), ARRAY['accepted', 'claimed', 'reclaimed'], 'and logs nothing');

-- Exactly one match in the listing: it is this attempt's hand-off. Another body and a
-- message created too early (before first claim - 5 min) are someone else's.
SELECT count(*) AS jobs_before FROM pgqueuer.pgqueuer \gset
SELECT is(app.reconcile_attempt(:'a1', 2, jsonb_build_array(
    pg_temp.candidate('SM-OTHER', 'sent', 'two', now()),
    pg_temp.candidate('SM-OLD', 'delivered', 'one', now() - interval '5 minutes 1 second'),
    pg_temp.candidate('SM-R1', 'sent', 'one', now()))),
  '{"action": "done", "provider_message_id": "SM-R1"}'::jsonb,
  'one candidate with our body, created after the first claim: done, with its SID');
SELECT app.apply_receipts() IS NOT NULL AS applied \gset
SELECT results_eq(format($$SELECT status, provider_message_id, provider_status, provider_status_rank, handed_off_at
                           FROM app.message_attempts WHERE id = %L$$, :'a1'),
  $$VALUES ('handed_off', 'SM-R1', 'sent', 40, now())$$, 'the attempt is handed off with the SID and its status');
SELECT results_eq(format('SELECT status, provider, provider_message_id, completed_at FROM app.messages WHERE id = %L', :'m1'),
  $$VALUES ('sent', 'twilio', 'SM-R1', NULL::timestamptz)$$, 'the message is sent with the SID');
SELECT is(pg_temp.events_of(:'m1'), ARRAY['accepted', 'claimed', 'reclaimed', 'reconciled', 'handed_off', 'provider_status'],
  'a reconciled event, then the hand-off and its listed status');
SELECT is((SELECT details ->> 'source' FROM app.message_events WHERE message_id = :'m1' AND event_type = 'provider_status'),
  'handoff', 'the listed status came through the receipt inbox as the hand-off''s');
SELECT results_eq(format($$SELECT provider_status, details FROM app.message_events
                           WHERE message_id = %L AND event_type = 'reconciled'$$, :'m1'),
  $$VALUES ('sent', '{"claim_no": 2, "provider_message_id": "SM-R1"}'::jsonb)$$,
  'the reconciled event names the SID, its status and the claim');
SELECT is((SELECT count(*) FROM pgqueuer.pgqueuer), :jobs_before::bigint, 'no job enqueued');
SELECT ok(pg_temp.holds_sid_lock('SM-R1') AND pg_temp.holds_sid_lock('SM-OLD'),
  'the provider ids with our body are advisory-locked until commit');
SELECT ok(NOT pg_temp.holds_sid_lock('SM-OTHER'), 'one with another body is not');
SELECT is(app.reconcile_attempt(:'a1', 2, '[]'), '{"action": "skip", "reason": "attempt_handed_off"}'::jsonb,
  'reconciling again: skip attempt_handed_off');

-- A candidate whose SID already belongs to another attempt is not this one's.
SELECT is(app.reconcile_attempt(:'a2', 2, jsonb_build_array(pg_temp.candidate('SM-R1', 'sent', 'two', now()))),
  '{"action": "send", "reason": "provider_has_no_record"}'::jsonb,
  'the only candidate is another attempt''s SID: send');
SELECT is((SELECT provider_message_id FROM app.message_attempts WHERE id = :'a2'), NULL,
  'the other attempt''s SID is not taken');
SELECT is((SELECT provider_message_id FROM app.message_attempts WHERE id = :'a1'), 'SM-R1',
  'and the first attempt keeps it');
SELECT results_eq(format($$SELECT event_type, status, details FROM app.message_events
                           WHERE message_id = %L AND event_type = 'resend'$$, :'m2'),
  $$VALUES ('resend', 'sending', '{"reason": "provider_has_no_record", "claim_no": 2, "candidates": 1}'::jsonb)$$,
  'a resend event with the reason and the number of listed messages');
SELECT is(pg_temp.attempt_status(:'a2'), 'claimed', 'the attempt stays claimed for the resend');
SELECT is(app.reconcile_attempt(:'a2', 2, jsonb_build_array(
    jsonb_build_object('status', 'sent', 'body', 'two'),
    pg_temp.candidate('SM-R1', 'sent', 'two', now()),
    jsonb_build_object('sid', 'SM-R2', 'status', 'queued', 'body', 'two', 'date_created', NULL),
    pg_temp.candidate('SM-R3', 'queued', 'three', now()))),
  '{"action": "done", "provider_message_id": "SM-R2"}'::jsonb,
  'no SID, a taken SID, another body: the one left is chosen (a NULL date_created is no obstacle)');
SELECT app.apply_receipts() IS NOT NULL AS applied \gset
SELECT results_eq(format('SELECT status, provider_message_id, provider_status FROM app.message_attempts WHERE id = %L', :'a2'),
  $$VALUES ('handed_off', 'SM-R2', 'queued')$$, 'and recorded');

-- No match: the provider never got it, resending is safe.
SELECT is(app.reconcile_attempt(:'a3', 2, '[]'), '{"action": "send", "reason": "provider_has_no_record"}'::jsonb,
  'no candidates: send');
SELECT is(app.reconcile_attempt(:'a3', 2, NULL), '{"action": "wait", "reason": "no_provider_lookup"}'::jsonb,
  'NULL candidates (a provider that cannot be asked): wait for a receipt, never resend');
SELECT is(app.reconcile_attempt(:'a3', 2, '[{"sid": null, "status": "sent", "body": "three"}]') ->> 'action', 'send',
  'a candidate with a null SID is no candidate');
SELECT is(app.reconcile_attempt(:'a3', 2, jsonb_build_array(
    pg_temp.candidate('SM-X1', 'delivered', 'three ', now()),
    pg_temp.candidate('SM-X2', 'delivered', 'Three', now()),
    jsonb_build_object('sid', 'SM-X3', 'status', 'delivered', 'date_created', NULL))),
  '{"action": "send", "reason": "provider_has_no_record"}'::jsonb,
  'candidates whose body differs (or is missing) are ignored: send');
SELECT is(app.reconcile_attempt(:'a3', 2, jsonb_build_array(
    pg_temp.candidate('SM-X4', 'delivered', 'three', now() - interval '5 minutes 1 second'),
    pg_temp.candidate('SM-X5', 'sent', 'three', now() - interval '1 day'))),
  '{"action": "send", "reason": "provider_has_no_record"}'::jsonb,
  'candidates created more than 5 minutes before the first claim are ignored: send');
SELECT is((SELECT array_agg(details ->> 'candidates' ORDER BY id) FROM app.message_events
            WHERE message_id = :'m3' AND event_type = 'resend'), ARRAY['0', '1', '3', '2'],
  'each logs a resend event with the number of listed messages');
SELECT results_eq(format($$SELECT a.status, a.provider_message_id, m.status
                           FROM app.message_attempts a JOIN app.messages m ON m.id = a.message_id WHERE a.id = %L$$, :'a3'),
  $$VALUES ('claimed', NULL::text, 'sending')$$, 'the attempt stays claimed, the message sending');

-- The match is already terminal at the provider: the message ends at once.
SELECT pg_temp.new_message(:'t', 'five') AS m5 \gset
SELECT pg_temp.attempt_of(:'m5') AS a5 \gset
SELECT pg_temp.claim_twice(:'a5') AS c5 \gset
SELECT is(app.reconcile_attempt(:'a5', 2, jsonb_build_array(
    pg_temp.candidate('SM-D1', 'delivered', 'five', now() - interval '5 minutes'))),
  '{"action": "done", "provider_message_id": "SM-D1"}'::jsonb,
  'a delivered candidate created exactly 5 minutes before the first claim: done');
SELECT app.apply_receipts() IS NOT NULL AS applied \gset
SELECT results_eq(format($$SELECT status, provider_message_id, provider_status, provider_status_rank
                           FROM app.message_attempts WHERE id = %L$$, :'a5'),
  $$VALUES ('delivered', 'SM-D1', 'delivered', 100)$$, 'the attempt is delivered');
SELECT results_eq(format('SELECT status, provider_message_id, sent_at, completed_at FROM app.messages WHERE id = %L', :'m5'),
  $$VALUES ('delivered', 'SM-D1', now(), now())$$, 'the message is delivered (terminal) once the receipts are applied');
SELECT is(pg_temp.events_of(:'m5'), ARRAY['accepted', 'claimed', 'reclaimed', 'reconciled', 'handed_off', 'provider_status'],
  'reconciled, then handed off, then the status');
SELECT is(app.claim_attempt(:'a5'), jsonb_build_object('action', 'skip', 'reason', 'attempt_delivered', 'attempt_id', :'a5'::uuid),
  'a later claim skips it');

SELECT pg_temp.new_message(:'t', 'six') AS m6 \gset
SELECT pg_temp.attempt_of(:'m6') AS a6 \gset
SELECT pg_temp.claim_twice(:'a6') AS c6 \gset
SELECT is(app.reconcile_attempt(:'a6', 2, jsonb_build_array(pg_temp.candidate('SM-F1', 'undelivered', 'six', now()))),
  '{"action": "done", "provider_message_id": "SM-F1"}'::jsonb, 'an undelivered candidate: done');
SELECT app.apply_receipts() IS NOT NULL AS applied \gset
SELECT results_eq(format($$SELECT a.status, m.status, m.completed_at
                           FROM app.message_attempts a JOIN app.messages m ON m.id = a.message_id WHERE a.id = %L$$, :'a6'),
  $$VALUES ('undelivered', 'undelivered', now())$$, 'attempt and message undelivered (terminal)');

-- Several matches (the tenant sent the same text twice): adopt none, send nothing,
-- look again after the claim lease; the status callbacks resolve it meanwhile.
SELECT pg_temp.new_message(:'t', 'same') AS m7 \gset
SELECT pg_temp.attempt_of(:'m7') AS a7 \gset
SELECT pg_temp.claim_twice(:'a7') AS c7 \gset
SELECT jsonb_build_array(pg_temp.candidate('SM-A2', 'sent', 'same', now()),
                         pg_temp.candidate('SM-A1', 'delivered', 'same', NULL),
                         pg_temp.candidate('SM-A3', 'sent', 'other', now())) AS twins \gset
SELECT max(id) AS last_job FROM pgqueuer.pgqueuer \gset
SELECT is(app.reconcile_attempt(:'a7', 2, :'twins'),
  '{"action": "wait", "reason": "reconcile_ambiguous"}'::jsonb, 'two candidates: wait, reconcile_ambiguous');
SELECT results_eq(format($$SELECT event_type, status, provider_status, error_code, details FROM app.message_events
                           WHERE message_id = %L AND event_type NOT IN ('accepted', 'claimed', 'reclaimed')$$, :'m7'),
  $$VALUES ('reconcile_ambiguous', NULL::text, NULL::text, NULL::text,
            '{"claim_no": 2, "provider_message_ids": ["SM-A1", "SM-A2"]}'::jsonb)$$,
  'a reconcile_ambiguous event naming both SIDs (sorted)');
SELECT results_eq(format($$SELECT entrypoint, status::text, convert_from(payload, 'UTF8')::jsonb, execute_after
                           FROM pgqueuer.pgqueuer WHERE id > %s$$, :last_job),
  format($$VALUES ('send', 'queued', jsonb_build_object('attempt_id', %L::uuid), now() + interval '60 seconds')$$, :'a7'),
  'one send_sms job, due when the claim lease ends');
SELECT results_eq(format($$SELECT a.status, a.claim_count, a.provider_message_id, a.error_code, m.status
                           FROM app.message_attempts a JOIN app.messages m ON m.id = a.message_id WHERE a.id = %L$$, :'a7'),
  $$VALUES ('claimed', 2, NULL::text, NULL::text, 'sending')$$,
  'the attempt stays claimed without a SID, the message sending');
SELECT ok(NOT EXISTS (SELECT 1 FROM app.message_attempts WHERE provider_message_id IN ('SM-A1', 'SM-A2')),
  'neither SID is recorded');
-- The next job (after the lease) re-claims and finds the same two, up to claim 5.
CREATE TEMP TABLE ambiguous (claim_no int, result jsonb);
SELECT set_config('hermes_test.attempt', :'a7', true) IS NOT NULL AS s,
       set_config('hermes_test.twins', :'twins', true) IS NOT NULL AS s2 \gset
DO $$
DECLARE
  v_attempt uuid := current_setting('hermes_test.attempt')::uuid;
  v_claim_no int;
BEGIN
  FOR i IN 3..6 LOOP
    PERFORM pg_temp.end_lease(v_attempt);
    v_claim_no := (app.claim_attempt(v_attempt) ->> 'claim_no')::int;
    INSERT INTO ambiguous
    VALUES (v_claim_no, app.reconcile_attempt(v_attempt, v_claim_no, current_setting('hermes_test.twins')::jsonb));
  END LOOP;
END
$$;
SELECT results_eq('SELECT claim_no, result FROM ambiguous ORDER BY claim_no',
  $$VALUES (3, '{"action": "wait", "reason": "reconcile_ambiguous"}'::jsonb),
           (4, '{"action": "wait", "reason": "reconcile_ambiguous"}'::jsonb),
           (5, '{"action": "wait", "reason": "reconcile_ambiguous"}'::jsonb),
           (6, '{"action": "skip", "reason": "reconcile_ambiguous"}'::jsonb)$$,
  'claims 3 to 5 wait again; on the 6th claim it gives up: skip reconcile_ambiguous');
SELECT results_eq(format('SELECT status, error_code, claim_count, provider_message_id FROM app.message_attempts WHERE id = %L', :'a7'),
  $$VALUES ('failed', 'reconcile_ambiguous', 6, NULL::text)$$, 'the attempt failed: reconcile_ambiguous');
SELECT results_eq(format('SELECT status, error_code, error_message, completed_at FROM app.messages WHERE id = %L', :'m7'),
  $$VALUES ('failed', 'reconcile_ambiguous', 'Could not tell which provider message was this one.', now())$$,
  'the message failed (terminal): reconcile_ambiguous');
SELECT is((SELECT array_agg((details ->> 'claim_no')::int ORDER BY id) FROM app.message_events
            WHERE message_id = :'m7' AND event_type = 'reconcile_ambiguous'), ARRAY[2, 3, 4, 5, 6],
  'one reconcile_ambiguous event per claim');
SELECT is((SELECT count(*)::int FROM pgqueuer.pgqueuer WHERE id > :last_job), 4,
  'a job after each waiting reconcile (claims 2 to 5), none after the failure');
SELECT is(app.reconcile_attempt(:'a7', 6, :'twins'), '{"action": "skip", "reason": "attempt_failed"}'::jsonb,
  'reconciling a failed attempt: skip attempt_failed');

-- Two matches of which one is another attempt's: not ambiguous.
SELECT pg_temp.new_message(:'t', 'same') AS m8 \gset
SELECT pg_temp.attempt_of(:'m8') AS a8 \gset
SELECT pg_temp.claim_twice(:'a8') AS c8 \gset
SELECT app.record_handoff(:'a8', 'SM-A1', 'delivered') IS NOT NULL AS h \gset
SELECT pg_temp.new_message(:'t', 'same') AS m9 \gset
SELECT pg_temp.attempt_of(:'m9') AS a9 \gset
SELECT pg_temp.claim_twice(:'a9') AS c9 \gset
SELECT is(app.reconcile_attempt(:'a9', 2, :'twins'), '{"action": "done", "provider_message_id": "SM-A2"}'::jsonb,
  'of two matches, one already recorded by another attempt: the other is ours');
SELECT is(pg_temp.message_status(:'m9'), 'sent', 'the message is sent');

-- The claim lease setting sets the wait.
UPDATE private.settings SET value = '90 seconds' WHERE key = 'claim_lease';
SELECT pg_temp.new_message(:'t', 'twice') AS m10 \gset
SELECT pg_temp.attempt_of(:'m10') AS a10 \gset
SELECT app.claim_attempt(:'a10') IS NOT NULL AS c \gset
SELECT pg_temp.end_lease(:'a10') IS NULL AS e \gset
SELECT (app.claim_attempt(:'a10') ->> 'claim_no')::int AS c10 \gset
SELECT is(app.reconcile_attempt(:'a10', :c10, jsonb_build_array(pg_temp.candidate('SM-T1', 'sent', 'twice', now()),
                                                                 pg_temp.candidate('SM-T2', 'sent', 'twice', now()))) ->> 'action',
  'wait', 'ambiguous again');
SELECT is((SELECT execute_after FROM pgqueuer.pgqueuer ORDER BY id DESC LIMIT 1), now() + interval '90 seconds',
  'the job is due after the configured claim lease');
UPDATE private.settings SET value = '60 seconds' WHERE key = 'claim_lease';

-- Not reconcilable.
SELECT is(app.reconcile_attempt(private.uuid7(), 1, '[]'), '{"action": "skip", "reason": "attempt_not_found"}'::jsonb,
  'an unknown attempt: skip attempt_not_found');
SELECT pg_temp.new_message(:'t', 'pending') AS m4 \gset
SELECT is(app.reconcile_attempt(pg_temp.attempt_of(:'m4'), 0,
            jsonb_build_array(pg_temp.candidate('SM-R4', 'sent', 'pending', now()))),
  '{"action": "skip", "reason": "attempt_pending"}'::jsonb, 'a never-claimed attempt: skip attempt_pending');
SELECT app.record_send_error(:'a3', 2, '21211', 'bad number', 400) IS NOT NULL AS e \gset
SELECT is(app.reconcile_attempt(:'a3', 2, jsonb_build_array(pg_temp.candidate('SM-R5', 'sent', 'three', now()))),
  '{"action": "skip", "reason": "attempt_failed"}'::jsonb, 'a failed attempt: skip attempt_failed');
SELECT ok(has_function_privilege('hermes_worker', 'app.reconcile_attempt(uuid,integer,jsonb)', 'EXECUTE')
          AND NOT has_function_privilege('hermes_api', 'app.reconcile_attempt(uuid,integer,jsonb)', 'EXECUTE'),
  'the workers may reconcile, the API may not');

-- The same provider message listed twice is still one match, not an ambiguity.
SELECT pg_temp.new_message(:'t', 'twice listed') AS m9 \gset
SELECT pg_temp.attempt_of(:'m9') AS a9 \gset
SELECT pg_temp.claim_twice(:'a9') AS c9 \gset
SELECT is(app.reconcile_attempt(:'a9', :c9, jsonb_build_array(
            pg_temp.candidate('SM-dup', 'sent', 'twice listed', now()),
            pg_temp.candidate('SM-dup', 'sent', 'twice listed', now()))) ->> 'action', 'done',
  'a SID listed twice is one match: done');
SELECT is((SELECT provider_message_id FROM app.message_attempts WHERE id = :'a9'), 'SM-dup',
  'and it is recorded');

-- A receipt that reached the inbox between the re-claim and the lookup settles it:
-- done, from the receipt, even when the listing shows nothing (no resend).
SELECT pg_temp.new_message(:'t', 'inbox during reconcile') AS mr \gset
SELECT pg_temp.attempt_of(:'mr') AS ar \gset
SELECT app.claim_attempt(:'ar') ->> 'action' AS r_first \gset
SELECT pg_temp.calling(:'ar') IS NOT NULL AS k \gset
SELECT pg_temp.end_lease(:'ar');
SELECT (app.claim_attempt(:'ar') ->> 'claim_no')::int AS r_claim \gset
SELECT app.record_receipt('twilio', :'ar', 'SM-late', 'sent');
SELECT is(app.reconcile_attempt(:'ar', :r_claim, '[]'),
  '{"action": "done", "reason": "receipt_in_inbox", "provider_message_id": "SM-late"}'::jsonb,
  'an empty listing, but a receipt in the inbox: done, no resend');
SELECT is(pg_temp.attempt_status(:'ar'), 'handed_off', 'the attempt is handed off under the receipt''s id');
SELECT ok(NOT ('resend' = ANY(pg_temp.events_of(:'mr'))) AND 'reconciled' = ANY(pg_temp.events_of(:'mr')),
  'a reconciled event, no resend event');

-- An opt-out while the message waited for its retry: the provider has no record, and
-- the resend is refused -- the message is rejected, nothing is sent.
SELECT (pg_temp.new_tenant('Retry Stop Co') -> 'tenant' ->> 'id') AS tq \gset
SELECT pg_temp.new_message(:'tq', 'waiting for a retry') AS mq \gset
SELECT pg_temp.attempt_of(:'mq') AS aq \gset
SELECT app.claim_attempt(:'aq') IS NOT NULL AS c1 \gset
SELECT pg_temp.calling(:'aq') IS NOT NULL AS k \gset
SELECT app.record_send_error(:'aq', 1, 'timeout', 'no answer', NULL) ->> 'action' AS retry \gset
SELECT pg_temp.opt(:'tq', 'opt_out', '+14155550123') ->> 'status' AS opted \gset
SELECT pg_temp.end_lease(:'aq');
-- ... after the reconcile delay (a timeout is looked up only once the provider lists it).
UPDATE app.message_attempts SET reconcile_after = now() - interval '1 second' WHERE id = :'aq';
SELECT (app.claim_attempt(:'aq') ->> 'claim_no')::int AS q_claim \gset
SELECT is(app.reconcile_attempt(:'aq', :q_claim, '[]') - 'reasons',
  '{"action": "skip", "reason": "opted_out"}'::jsonb, 'not at the provider and opted out since: skip, no resend');
SELECT results_eq(format($$SELECT a.status, m.status, m.error_code, m.reasons -> 0 ->> 'code'
                             FROM app.message_attempts a JOIN app.messages m ON m.id = a.message_id WHERE a.id = %L$$, :'aq'),
  $$VALUES ('rejected', 'rejected', 'opted_out', 'opted_out')$$, 'attempt and message rejected');
SELECT ok(NOT ('resend' = ANY(pg_temp.events_of(:'mq'))) AND 'rejected' = ANY(pg_temp.events_of(:'mq')),
  'a rejected event, no resend event');

-- A sender reassigned to another tenant while the message waited for its retry: the
-- resend is a new hand-off, refused like a claim (sender_not_allowed).
SELECT (pg_temp.new_tenant('Retry Sender Co') -> 'tenant' ->> 'id') AS tz \gset
SELECT (pg_temp.new_tenant('Sender Taker Co') -> 'tenant' ->> 'id') AS tz2 \gset
SELECT pg_temp.new_sender(:'tz', 'sms', '+14155550996') AS sz \gset
SELECT private.submit_message(:'tz', NULL, '{"to": "+14155550123", "from": "+14155550996", "body": "retry me"}')
         #>> '{message,id}' AS mz \gset
SELECT pg_temp.attempt_of(:'mz') AS az \gset
SELECT app.claim_attempt(:'az') IS NOT NULL AS cz \gset
SELECT pg_temp.calling(:'az') IS NOT NULL AS kz \gset
SELECT app.record_send_error(:'az', 1, 'timeout', 'no answer', NULL) ->> 'action' AS retry_z \gset
SELECT private.update_sender(NULL, :'sz', jsonb_build_object('tenant_id', :'tz2')) ->> 'tenant_id' AS moved_z \gset
SELECT pg_temp.end_lease(:'az');
SELECT (app.claim_attempt(:'az') ->> 'claim_no')::int AS z_claim \gset
SELECT is(app.reconcile_attempt(:'az', :z_claim, '[]') - 'reasons',
  '{"action": "skip", "reason": "sender_not_allowed"}'::jsonb,
  'not at the provider and its sender reassigned since: skip, no resend');
SELECT ok(NOT ('resend' = ANY(pg_temp.events_of(:'mz'))) AND pg_temp.attempt_status(:'az') = 'rejected',
  'the step is rejected, no resend event');

-- A provider that cannot be asked: the wait for a receipt lasts reconcile_window from
-- the first wait, however often the attempt is claimed again meanwhile.
SELECT pg_temp.new_message(:'t', 'no lookups') AS mw \gset
SELECT pg_temp.attempt_of(:'mw') AS aw \gset
SELECT pg_temp.claim_twice(:'aw') AS cw \gset
SELECT is(app.reconcile_attempt(:'aw', :cw, NULL), '{"action": "wait", "reason": "no_provider_lookup"}'::jsonb,
  'no lookups: wait');
SELECT is((SELECT last_claimed_at FROM app.message_attempts WHERE id = :'aw'), NULL,
  'the wait ends the claim (nothing is being sent)');
SELECT is((SELECT execute_after FROM pgqueuer.pgqueuer
            WHERE convert_from(payload, 'UTF8')::jsonb ->> 'attempt_id' = :'aw' ORDER BY id DESC LIMIT 1),
  now() + interval '60 seconds', 'and looks again a lease later (the window is longer)');
SELECT (app.claim_attempt(:'aw') ->> 'claim_no')::int AS cw2 \gset
SELECT app.reconcile_attempt(:'aw', :cw2, NULL) IS NOT NULL AS w2 \gset
SELECT is((SELECT count(DISTINCT details ->> 'since')::int FROM app.message_events
            WHERE attempt_id = :'aw' AND event_type = 'reconcile_ambiguous'), 1,
  'a re-claim does not restart the window: every wait names the first');
-- (events are append-only and now() is the transaction's: the window shrinks instead)
UPDATE private.settings SET value = '0 seconds' WHERE key = 'reconcile_window';
SELECT (app.claim_attempt(:'aw') ->> 'claim_no')::int AS cw3 \gset
SELECT is(app.reconcile_attempt(:'aw', :cw3, NULL) || jsonb_build_object('status', pg_temp.attempt_status(:'aw')),
  '{"action": "skip", "reason": "handoff_unknown", "status": "unknown"}'::jsonb,
  'once the window has passed: unknown, never resent');

SELECT * FROM finish();
ROLLBACK;
