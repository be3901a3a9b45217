-- app.record_handoffs (a worker's batch) and app.record_handoff (one element): the
-- provider accepted the message. Records the SID (attempt handed_off, message sent, a
-- 'handed_off' event); idempotent; a second SID is recorded as a duplicate hand-off,
-- never hidden. The status the provider answered goes into the receipt inbox (source
-- 'handoff') and reaches attempt and message through app.apply_receipts, like any
-- receipt: a terminal one ends the message. Returns {recorded, duplicates, already_recorded}.
BEGIN;
\ir ../../helpers.psql
SELECT plan(58);

SELECT (pg_temp.new_tenant('Handoff Co') -> 'tenant' ->> 'id') AS t \gset
SELECT pg_temp.new_message(:'t') AS m \gset
SELECT pg_temp.attempt_of(:'m') AS a \gset
SELECT app.claim_attempt(:'a') IS NOT NULL AS c \gset
CREATE FUNCTION pg_temp.result(p_recorded int, p_duplicates int, p_already int) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('recorded', p_recorded, 'duplicates', p_duplicates, 'already_recorded', p_already)
$$;
CREATE FUNCTION pg_temp.handoff(p_attempt uuid, p_sid text, p_status text DEFAULT NULL) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_strip_nulls(jsonb_build_object('attempt_id', p_attempt, 'provider_message_id', p_sid,
                                              'provider_status', p_status))
$$;

-- Refusals: the whole call, nothing recorded.
SELECT pg_temp.counts() AS before \gset
SELECT is(pg_temp.problem(format($$SELECT app.record_handoff(%L, NULL)$$, :'a')), 'HM422 missing_provider_message_id',
  'no SID: HM422 missing_provider_message_id');
SELECT is(pg_temp.problem(format($$SELECT app.record_handoff(%L, '')$$, :'a')), 'HM422 missing_provider_message_id',
  'an empty SID: HM422 missing_provider_message_id');
SELECT is(pg_temp.problem(format($$SELECT app.record_handoff(%L, 'SM0')$$, private.uuid7())), 'HM404 attempt_not_found',
  'an unknown attempt: HM404 attempt_not_found');
SELECT is(pg_temp.problem($$SELECT app.record_handoffs('{"attempt_id": null}')$$), 'HM422 invalid_handoffs',
  'hand-offs that are not a JSON array: HM422 invalid_handoffs');
SELECT is(pg_temp.problem($$SELECT app.record_handoffs('[{"provider_message_id": "SM0"}]')$$),
  'HM422 missing_provider_message_id', 'an element without attempt_id: HM422 missing_provider_message_id');
SELECT is(pg_temp.problem(format('SELECT app.record_handoffs(%L)',
            jsonb_build_array(pg_temp.handoff(:'a', 'SM-H1'), pg_temp.handoff(private.uuid7(), 'SM0')))),
  'HM404 attempt_not_found', 'a batch with one unknown attempt: HM404 for the whole batch');
SELECT is(pg_temp.counts(), :'before'::jsonb, 'no refusal recorded anything (not even the valid element)');
SELECT is(app.record_handoffs('[]'), pg_temp.result(0, 0, 0), 'an empty batch: nothing to do');

SELECT is(app.record_handoff(:'a', 'SM-H1'), pg_temp.result(1, 0, 0), 'the hand-off: recorded');
SELECT results_eq(format($$SELECT status, provider_message_id, provider_status, provider_status_rank, handed_off_at
                           FROM app.message_attempts WHERE id = %L$$, :'a'),
  $$VALUES ('handed_off', 'SM-H1', NULL::text, 0, now())$$,
  'the attempt is handed off with the SID (its provider status not applied yet)');
SELECT results_eq(format('SELECT status, provider, provider_message_id, sent_at, completed_at FROM app.messages WHERE id = %L', :'m'),
  $$VALUES ('sent', 'twilio', 'SM-H1', now(), NULL::timestamptz)$$, 'the message is sent, with provider and SID');
SELECT results_eq(format($$SELECT event_type, status, provider_status, error_code, details FROM app.message_events
                           WHERE message_id = %L AND event_type = 'handed_off'$$, :'m'),
  $$VALUES ('handed_off', 'sent', NULL::text, NULL::text, '{"provider_message_id": "SM-H1", "via": "worker"}'::jsonb)$$,
  'one handed_off event');
SELECT results_eq(format($$SELECT r.provider, r.provider_message_id, r.provider_status, r.source, q.receipt_id IS NOT NULL
                           FROM app.receipts r LEFT JOIN private.receipt_queue q ON q.receipt_id = r.id
                          WHERE r.attempt_id = %L$$, :'a'),
  $$VALUES ('twilio', 'SM-H1', 'queued', 'handoff', true)$$,
  'the answered status (queued, the default) is in the receipt inbox, queued');
SELECT is(app.apply_receipts() ->> 'attempts_changed', '1', 'app.apply_receipts applies it');
SELECT results_eq(format('SELECT status, provider_status, provider_status_rank FROM app.message_attempts WHERE id = %L', :'a'),
  $$VALUES ('handed_off', 'queued', 20)$$, 'the attempt has provider status queued');

-- Idempotent.
SELECT pg_temp.counts() AS before \gset
SELECT is(app.record_handoff(:'a', 'SM-H1'), pg_temp.result(0, 0, 1), 'the same hand-off again: already recorded');
SELECT is(pg_temp.counts(), :'before'::jsonb, 'and no new row anywhere (no second event, no second receipt)');
SELECT results_eq(format('SELECT status, provider_message_id, handed_off_at FROM app.message_attempts WHERE id = %L', :'a'),
  $$VALUES ('handed_off', 'SM-H1', now())$$, 'the attempt is unchanged');

-- A different SID for the same attempt: a duplicate hand-off (two provider messages).
SELECT is(app.record_handoff(:'a', 'SM-H2', 'sent'), pg_temp.result(0, 1, 0), 'another SID: a duplicate');
SELECT results_eq(format($$SELECT event_type, status, provider_status, error_code, details FROM app.message_events
                           WHERE message_id = %L AND error_code = 'duplicate_handoff'$$, :'m'),
  $$VALUES ('handed_off', NULL::text, 'sent', 'duplicate_handoff',
            '{"provider_message_id": "SM-H2", "first_provider_message_id": "SM-H1"}'::jsonb)$$,
  'a handed_off event with error_code duplicate_handoff naming both SIDs');
SELECT is((SELECT provider_message_id FROM app.message_attempts WHERE id = :'a'), 'SM-H1', 'the attempt keeps the first SID');
SELECT is((SELECT provider_message_id FROM app.messages WHERE id = :'m'), 'SM-H1', 'the message keeps the first SID');
SELECT is((SELECT count(*)::int FROM app.receipts WHERE provider_message_id = 'SM-H2'), 0,
  'the duplicate''s status does not enter the inbox');
SELECT is(app.apply_receipts(), '{"applied": 0}'::jsonb, 'so nothing is applied');
SELECT is((SELECT provider_status FROM app.message_attempts WHERE id = :'a'), 'queued',
  'the duplicate does not change the provider status');

-- The hand-off status, and hand-offs of attempts in other states.
SELECT pg_temp.new_message(:'t') AS m2 \gset
SELECT pg_temp.attempt_of(:'m2') AS a2 \gset
SELECT app.claim_attempt(:'a2') IS NOT NULL AS c \gset
SELECT is(app.record_handoff(:'a2', 'SM-H3', 'sent'), pg_temp.result(1, 0, 0), 'a hand-off with status sent');
SELECT app.apply_receipts() IS NOT NULL AS x \gset
SELECT results_eq(format('SELECT provider_status, provider_status_rank FROM app.message_attempts WHERE id = %L', :'a2'),
  $$VALUES ('sent', 40)$$, 'records the provider status and its rank');
SELECT is(app.record_handoff(:'a2', 'SM-H3', 'accepted'), pg_temp.result(0, 0, 1), 'a lower status later');
SELECT is(app.apply_receipts() ->> 'attempts_changed', '0', 'is applied as a receipt and changes nothing');
SELECT results_eq(format('SELECT provider_status, provider_status_rank FROM app.message_attempts WHERE id = %L', :'a2'),
  $$VALUES ('sent', 40)$$, 'does not lower the provider status');

SELECT pg_temp.new_message(:'t') AS m3 \gset
SELECT pg_temp.attempt_of(:'m3') AS a3 \gset
SELECT is(app.record_handoff(:'a3', 'SM-H4'), pg_temp.result(1, 0, 0),
  'a hand-off of a never-claimed (pending) attempt is recorded too');
SELECT is(pg_temp.attempt_status(:'a3'), 'handed_off', 'the pending attempt is handed off');

SELECT pg_temp.new_message(:'t') AS m4 \gset
SELECT pg_temp.attempt_of(:'m4') AS a4 \gset
SELECT app.claim_attempt(:'a4') IS NOT NULL AS c \gset
SELECT app.record_send_error(:'a4', 1, '21211', 'refused', 400) IS NOT NULL AS e \gset
SELECT is(app.record_handoff(:'a4', 'SM-H5'), pg_temp.result(1, 0, 0), 'a late hand-off of a failed attempt is recorded');
SELECT results_eq(format('SELECT a.status, a.provider_message_id, m.status FROM app.message_attempts a
                            JOIN app.messages m ON m.id = a.message_id WHERE a.id = %L', :'a4'),
  $$VALUES ('failed', 'SM-H5', 'failed')$$, 'the failed attempt learns its SID but stays failed, and so does the message');
SELECT is(app.record_handoff(:'a4', 'SM-H5', 'delivered'), pg_temp.result(0, 0, 1), 'then a terminal status for it');
SELECT app.apply_receipts() IS NOT NULL AS x \gset
SELECT results_eq(format('SELECT status, provider_status, provider_status_rank, error_code FROM app.message_attempts WHERE id = %L', :'a4'),
  $$VALUES ('failed', NULL::text, 0, 'twilio:21211')$$,
  'the first terminal status (failed) stays: the failed attempt takes no provider status');

-- A terminal status at hand-off (e.g. found by reconciliation): the message ends once applied.
SELECT pg_temp.new_message(:'t') AS m5 \gset
SELECT pg_temp.attempt_of(:'m5') AS a5 \gset
SELECT app.claim_attempt(:'a5') IS NOT NULL AS c \gset
SELECT is(app.record_handoff(:'a5', 'SM-H6', 'delivered'), pg_temp.result(1, 0, 0), 'a hand-off with status delivered');
SELECT is(pg_temp.message_status(:'m5'), 'sent', 'sent until the receipt applier runs');
SELECT app.apply_receipts() IS NOT NULL AS x \gset
SELECT results_eq(format($$SELECT status, provider_message_id, provider_status, provider_status_rank, handed_off_at
                           FROM app.message_attempts WHERE id = %L$$, :'a5'),
  $$VALUES ('delivered', 'SM-H6', 'delivered', 100, now())$$, 'the attempt is delivered, with its SID');
SELECT results_eq(format($$SELECT status, provider, provider_message_id, sent_at, completed_at, error_code
                           FROM app.messages WHERE id = %L$$, :'m5'),
  $$VALUES ('delivered', 'twilio', 'SM-H6', now(), now(), NULL::text)$$, 'the message is delivered (terminal), sent and completed');
SELECT results_eq(format($$SELECT event_type, status, provider_status, details - 'receipt_id' FROM app.message_events
                           WHERE message_id = %L AND event_type NOT IN ('accepted', 'claimed') ORDER BY id$$, :'m5'),
  $$VALUES ('handed_off', 'sent', NULL::text, '{"provider_message_id": "SM-H6", "via": "worker"}'::jsonb),
           ('provider_status', NULL, 'delivered',
            '{"provider_message_id": "SM-H6", "source": "handoff", "known_status": true}'::jsonb)$$,
  'one handed_off event, then the answered status as a provider_status event');
SELECT is(app.record_handoff(:'a5', 'SM-H6', 'undelivered'), pg_temp.result(0, 0, 1), 'another terminal status later');
SELECT app.apply_receipts() IS NOT NULL AS x \gset
SELECT results_eq(format('SELECT a.status, a.provider_status, m.status FROM app.message_attempts a
                            JOIN app.messages m ON m.id = a.message_id WHERE a.id = %L', :'a5'),
  $$VALUES ('delivered', 'delivered', 'delivered')$$, 'changes nothing: delivered stays');

SELECT pg_temp.new_message(:'t') AS m6 \gset
SELECT pg_temp.attempt_of(:'m6') AS a6 \gset
SELECT app.claim_attempt(:'a6') IS NOT NULL AS c \gset
SELECT is(app.record_handoff(:'a6', 'SM-H7', 'canceled'), pg_temp.result(1, 0, 0), 'a hand-off with status canceled');
SELECT app.apply_receipts() IS NOT NULL AS x \gset
SELECT results_eq(format($$SELECT a.status, a.provider_status, m.status, m.completed_at
                           FROM app.message_attempts a JOIN app.messages m ON m.id = a.message_id WHERE a.id = %L$$, :'a6'),
  $$VALUES ('failed', 'canceled', 'failed', now())$$, 'attempt and message failed (terminal)');

SELECT pg_temp.new_message(:'t') AS m7 \gset
SELECT pg_temp.attempt_of(:'m7') AS a7 \gset
SELECT app.claim_attempt(:'a7') IS NOT NULL AS c \gset
SELECT is(app.record_handoff(:'a7', 'SM-H8', 'no-such-status'), pg_temp.result(1, 0, 0),
  'an unknown provider status at hand-off');
SELECT app.apply_receipts() IS NOT NULL AS x \gset
SELECT results_eq(format('SELECT status, provider_message_id, provider_status, provider_status_rank FROM app.message_attempts WHERE id = %L', :'a7'),
  $$VALUES ('handed_off', 'SM-H8', NULL::text, 0)$$, 'handed off; the unknown status is not applied');
SELECT app.record_handoff(:'a7', 'SM-H8', 'read') IS NOT NULL AS h \gset
SELECT app.apply_receipts() IS NOT NULL AS x \gset
SELECT is(pg_temp.message_status(:'m7'), 'delivered',
  'the same hand-off again with read (implies delivered): the message is delivered');

-- A batch: several attempts in one call.
SELECT pg_temp.attempt_of(pg_temp.new_message(:'t')) AS b1 \gset
SELECT pg_temp.attempt_of(pg_temp.new_message(:'t')) AS b2 \gset
SELECT pg_temp.attempt_of(pg_temp.new_message(:'t')) AS b3 \gset
SELECT app.claim_attempts(ARRAY[:'b1', :'b2', :'b3']::uuid[]) IS NOT NULL AS c \gset
SELECT max(id) AS last_event FROM app.message_events \gset
SELECT is(app.record_handoffs(jsonb_build_array(pg_temp.handoff(:'b1', 'SM-B1', 'sent'), pg_temp.handoff(:'b2', 'SM-B2'),
                                                pg_temp.handoff(:'b3', 'SM-B3', 'delivered'))),
  pg_temp.result(3, 0, 0), 'a batch of three hand-offs: three recorded');
SELECT results_eq(format($$SELECT a.status, a.provider_message_id, m.status, m.provider_message_id
                           FROM app.message_attempts a JOIN app.messages m ON m.id = a.message_id
                          WHERE a.id IN (%L, %L, %L) ORDER BY a.provider_message_id$$, :'b1', :'b2', :'b3'),
  $$VALUES ('handed_off', 'SM-B1', 'sent', 'SM-B1'), ('handed_off', 'SM-B2', 'sent', 'SM-B2'),
           ('handed_off', 'SM-B3', 'sent', 'SM-B3')$$, 'each attempt handed off with its own SID, each message sent');
SELECT results_eq(format($$SELECT event_type, details ->> 'provider_message_id' FROM app.message_events WHERE id > %s
                           ORDER BY 2$$, :last_event),
  $$VALUES ('handed_off', 'SM-B1'), ('handed_off', 'SM-B2'), ('handed_off', 'SM-B3')$$, 'one handed_off event each');
SELECT results_eq($$SELECT provider_message_id, provider_status, source FROM app.receipts
                     WHERE provider_message_id LIKE 'SM-B%' ORDER BY 1$$,
  $$VALUES ('SM-B1', 'sent', 'handoff'), ('SM-B2', 'queued', 'handoff'), ('SM-B3', 'delivered', 'handoff')$$,
  'the answered statuses are in the inbox (queued where none was given)');
SELECT app.apply_receipts() IS NOT NULL AS x \gset
SELECT results_eq(format($$SELECT a_status, provider_status FROM (VALUES (1, %L::uuid), (2, %L), (3, %L)) v(n, a),
                                  pg_temp.state(v.a) ORDER BY v.n$$, :'b1', :'b2', :'b3'),
  $$VALUES ('handed_off', 'sent'), ('handed_off', 'queued'), ('delivered', 'delivered')$$,
  'and applied: sent, queued, delivered');
SELECT pg_temp.attempt_of(pg_temp.new_message(:'t')) AS b4 \gset
SELECT is(app.record_handoffs(jsonb_build_array(pg_temp.handoff(:'b4', 'SM-B4'), pg_temp.handoff(:'b1', 'SM-B1'),
                                                pg_temp.handoff(:'b2', 'SM-B2-again'))),
  pg_temp.result(1, 1, 1), 'a new, a repeated and a second SID in one batch: 1 recorded, 1 duplicate, 1 already recorded');
SELECT results_eq(format($$SELECT attempt_id, details FROM app.message_events WHERE error_code = 'duplicate_handoff'
                           AND details ->> 'provider_message_id' = 'SM-B2-again'$$),
  format($$VALUES (%L::uuid, '{"provider_message_id": "SM-B2-again", "first_provider_message_id": "SM-B2"}'::jsonb)$$, :'b2'),
  'the second SID is flagged duplicate_handoff on its attempt');
-- Two SIDs for one attempt inside one batch are a second hand-off too.
SELECT pg_temp.attempt_of(pg_temp.new_message(:'t')) AS b5 \gset
SELECT is(app.record_handoffs(jsonb_build_array(pg_temp.handoff(:'b5', 'SM-B5a'), pg_temp.handoff(:'b5', 'SM-B5b'))),
  pg_temp.result(1, 1, 0), 'one attempt with two SIDs in one batch: the first recorded, the second a duplicate');
SELECT results_eq(format($$SELECT a.provider_message_id,
                                  (SELECT count(*)::int FROM app.message_events e
                                    WHERE e.attempt_id = a.id AND e.error_code = 'duplicate_handoff')
                             FROM app.message_attempts a WHERE a.id = %L$$, :'b5'),
  $$VALUES ('SM-B5a', 1)$$, 'the attempt keeps the first SID and the second is flagged duplicate_handoff, not hidden');

SELECT ok(has_function_privilege('hermes_worker', 'app.record_handoff(uuid,text,text)', 'EXECUTE')
          AND has_function_privilege('hermes_worker', 'app.record_handoffs(jsonb)', 'EXECUTE')
          AND NOT has_function_privilege('hermes_api', 'app.record_handoffs(jsonb)', 'EXECUTE'),
  'the workers may record hand-offs, the API may not');

SELECT * FROM finish();
ROLLBACK;
