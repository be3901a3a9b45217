-- app.reconcile_attempt: after a re-claim, record a hand-off found at the provider or
-- allow one resend; only the latest claim may do so.
BEGIN;
\ir ../../helpers.psql
SELECT plan(26);

SELECT (pg_temp.new_tenant('Reconcile Co') -> 'tenant' ->> 'id') AS t \gset
SELECT pg_temp.new_message(:'t', 'one') AS m1 \gset
SELECT pg_temp.attempt_of(:'m1') AS a1 \gset
SELECT pg_temp.new_message(:'t', 'two') AS m2 \gset
SELECT pg_temp.attempt_of(:'m2') AS a2 \gset
SELECT pg_temp.new_message(:'t', 'three') AS m3 \gset
SELECT pg_temp.attempt_of(:'m3') AS a3 \gset
-- Each claimed, then re-claimed after its lease ran out: claim_no 2.
CREATE FUNCTION pg_temp.claim_twice(p_attempt uuid) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  PERFORM app.claim_attempt(p_attempt);
  PERFORM pg_temp.end_lease(p_attempt);
  RETURN (app.claim_attempt(p_attempt) ->> 'claim_no')::int;
END
$$;
SELECT pg_temp.claim_twice(:'a1') AS c1, pg_temp.claim_twice(:'a2') AS c2, pg_temp.claim_twice(:'a3') AS c3 \gset
SELECT is(ARRAY[:c1, :c2, :c3], ARRAY[2, 2, 2], 'three attempts at claim_no 2');

-- A stale claim cannot reconcile.
SELECT is(app.reconcile_attempt(:'a1', 1, '[{"sid": "SM-R1", "status": "sent"}]'),
  '{"action": "skip", "reason": "stale_claim"}'::jsonb, 'claim_no 1 after claim 2: skip stale_claim');
SELECT results_eq(format('SELECT status, provider_message_id FROM app.message_attempts WHERE id = %L', :'a1'),
  $$VALUES ('claimed', NULL::text)$$, 'a stale reconcile changes nothing');
SELECT is(pg_temp.events_of(:'m1'), ARRAY['accepted', 'claimed', 'reclaimed'], 'and logs nothing');

-- A candidate found: it is this attempt's hand-off.
SELECT is(app.reconcile_attempt(:'a1', 2, '[{"sid": "SM-R1", "status": "sent"}]'),
  '{"action": "done", "provider_message_id": "SM-R1"}'::jsonb, 'a candidate: done, with its SID');
SELECT results_eq(format($$SELECT status, provider_message_id, provider_status, handed_off_at
                           FROM app.message_attempts WHERE id = %L$$, :'a1'),
  $$VALUES ('handed_off', 'SM-R1', 'sent', now())$$, 'the attempt is handed off with the SID');
SELECT results_eq(format('SELECT status, provider, provider_message_id FROM app.messages WHERE id = %L', :'m1'),
  $$VALUES ('sent', 'twilio', 'SM-R1')$$, 'the message is sent with the SID');
SELECT is(pg_temp.events_of(:'m1'), ARRAY['accepted', 'claimed', 'reclaimed', 'reconciled', 'handed_off'],
  'a reconciled event, then the hand-off');
SELECT is((SELECT details FROM app.message_events WHERE message_id = :'m1' AND event_type = 'reconciled'),
  '{"claim_no": 2, "provider_message_id": "SM-R1"}'::jsonb, 'the reconciled event names the SID and the claim');
SELECT is(app.reconcile_attempt(:'a1', 2, '[]'), '{"action": "skip", "reason": "attempt_handed_off"}'::jsonb,
  'reconciling again: skip attempt_handed_off');

-- A candidate whose SID already belongs to another attempt is not this one's.
SELECT is(app.reconcile_attempt(:'a2', 2, '[{"sid": "SM-R1", "status": "sent"}]'),
  '{"action": "send", "reason": "provider_has_no_record"}'::jsonb,
  'the only candidate is another attempt''s SID: send');
SELECT is((SELECT provider_message_id FROM app.message_attempts WHERE id = :'a2'), NULL,
  'the other attempt''s SID is not taken');
SELECT is((SELECT provider_message_id FROM app.message_attempts WHERE id = :'a1'), 'SM-R1',
  'and the first attempt keeps it');
SELECT results_eq(format($$SELECT event_type, status, details FROM app.message_events
                           WHERE message_id = %L AND event_type = 'resend'$$, :'m2'),
  $$VALUES ('resend', 'sending', '{"reason": "provider_has_no_record", "claim_no": 2, "candidates": 1}'::jsonb)$$,
  'a resend event with the reason and the number of candidates');
SELECT is(pg_temp.attempt_status(:'a2'), 'claimed', 'the attempt stays claimed for the resend');
SELECT is(app.reconcile_attempt(:'a2', 2,
    '[{"status": "sent"}, {"sid": "SM-R1"}, {"sid": "SM-R2", "status": "queued"}, {"sid": "SM-R3"}]') ->> 'provider_message_id',
  'SM-R2', 'the first candidate with a SID not already taken is chosen');
SELECT is((SELECT provider_message_id FROM app.message_attempts WHERE id = :'a2'), 'SM-R2', 'and recorded');

-- No candidates: the provider never got it, resending is safe.
SELECT is(app.reconcile_attempt(:'a3', 2, '[]'), '{"action": "send", "reason": "provider_has_no_record"}'::jsonb,
  'no candidates: send');
SELECT is(app.reconcile_attempt(:'a3', 2, NULL), '{"action": "send", "reason": "provider_has_no_record"}'::jsonb,
  'NULL candidates: send');
SELECT is((SELECT array_agg(details ->> 'candidates' ORDER BY id) FROM app.message_events
            WHERE message_id = :'m3' AND event_type = 'resend'), ARRAY['0', '0'],
  'each logs a resend event with 0 candidates');
SELECT is(pg_temp.message_status(:'m3'), 'sending', 'the message is still sending');
SELECT is(app.reconcile_attempt(:'a3', 2, '[{"sid": null}]') ->> 'action', 'send', 'a candidate with a null SID is no candidate');

-- Not reconcilable.
SELECT is(app.reconcile_attempt(private.uuid7(), 1, '[]'), '{"action": "skip", "reason": "attempt_not_found"}'::jsonb,
  'an unknown attempt: skip attempt_not_found');
SELECT pg_temp.new_message(:'t', 'pending') AS m4 \gset
SELECT is(app.reconcile_attempt(pg_temp.attempt_of(:'m4'), 0, '[{"sid": "SM-R4"}]'),
  '{"action": "skip", "reason": "attempt_pending"}'::jsonb, 'a never-claimed attempt: skip attempt_pending');
SELECT app.record_send_error(:'a3', 2, '21211', 'bad number', true) IS NOT NULL AS e \gset
SELECT is(app.reconcile_attempt(:'a3', 2, '[{"sid": "SM-R5"}]'),
  '{"action": "skip", "reason": "attempt_failed"}'::jsonb, 'a failed attempt: skip attempt_failed');
SELECT ok(has_function_privilege('hermes_worker', 'app.reconcile_attempt(uuid,integer,jsonb)', 'EXECUTE'),
  'the workers may reconcile');

SELECT * FROM finish();
ROLLBACK;
