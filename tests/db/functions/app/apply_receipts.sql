-- app.apply_receipts: the receipt consumer. Applies pending inbox receipts
-- (private.receipt_queue -> app.receipts) set-based: each becomes a provider_status
-- event; an unrecorded hand-off is recorded; per attempt the first terminal receipt
-- (by arrival) or else the highest-ranked one applies, only upwards and never after a
-- terminal state; a receipt with another provider id is logged, never applied.
-- Returns {applied, attempts_changed, handoffs_recorded}, or {applied: 0, busy: true}
-- while another session holds its advisory lock.
BEGIN;
\ir ../../helpers.psql
SELECT plan(76);

SELECT (pg_temp.new_tenant('Apply Co') -> 'tenant' ->> 'id') AS t \gset
-- A status callback, as the API records it.
CREATE FUNCTION pg_temp.cb(p_attempt uuid, p_sid text, p_status text, p_code text DEFAULT NULL,
                           p_message text DEFAULT NULL)
RETURNS jsonb LANGUAGE sql AS $$
  SELECT app.record_receipt('twilio', p_attempt, p_sid, p_status, p_code, p_message)
$$;
CREATE FUNCTION pg_temp.message_of(p_attempt uuid) RETURNS uuid LANGUAGE sql AS $$
  SELECT message_id FROM app.message_attempts WHERE id = p_attempt
$$;
-- The provider_status events of an attempt's message, in order.
CREATE FUNCTION pg_temp.receipt_events(p_attempt uuid)
RETURNS TABLE (provider_status text, error_code text, dedupe_key text, details jsonb)
LANGUAGE sql AS $$
  SELECT provider_status, error_code, dedupe_key, details - 'receipt_id'
    FROM app.message_events
   WHERE message_id = pg_temp.message_of(p_attempt) AND event_type = 'provider_status' ORDER BY id
$$;
-- Whether this transaction holds the applier's advisory lock.
CREATE FUNCTION pg_temp.holds_apply_lock() RETURNS boolean LANGUAGE sql AS $$
  SELECT EXISTS (SELECT 1 FROM pg_locks
                  WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted AND objsubid = 1
                    AND ((classid::bigint << 32) | objid::bigint) = hashtextextended('hermes.apply_receipts', 0))
$$;

-- Another session holds the lock: busy, at once. (A second session through dblink,
-- before this transaction ever takes the lock: advisory locks are re-entrant within a
-- session, and a session waiting for this one's lock would never return.)
SELECT pg_temp.handed_off(:'t', 'SM-0') AS a0 \gset
SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'dblink') AS have_dblink \gset
\if :have_dblink
CREATE EXTENSION dblink SCHEMA tap;
SELECT tap.dblink_connect('other', format('host=%s port=%s dbname=%s user=%s',
         coalesce(host(inet_server_addr()), split_part(current_setting('unix_socket_directories'), ',', 1)),
         current_setting('port'), current_database(), current_user)) AS connected \gset
SELECT x AS locked FROM tap.dblink('other', $$SELECT pg_advisory_lock(hashtextextended('hermes.apply_receipts', 0))::text$$) AS l(x text) \gset
SELECT is(app.apply_receipts(), '{"applied": 0, "busy": true}'::jsonb,
  'while another session holds the applier''s lock: {applied: 0, busy: true}, without waiting');
SELECT is(pg_temp.pending_receipts(), 1, 'and the queue is left as it was');
SELECT x AS unlocked FROM tap.dblink('other', $$SELECT pg_advisory_unlock(hashtextextended('hermes.apply_receipts', 0))::text$$) AS l(x text) \gset
\else
SELECT skip('dblink is not available: no second session', 2);
\endif
SELECT is(app.apply_receipts(), '{"applied": 1, "attempts_changed": 1, "handoffs_recorded": 0}'::jsonb,
  'once the lock is free the pending receipt is applied');
SELECT ok(pg_temp.holds_apply_lock(),
  'the applier holds the transaction-level advisory lock hashtextextended(''hermes.apply_receipts'', 0)');
\if :have_dblink
SELECT is((SELECT x FROM tap.dblink('other',
             $$SELECT pg_try_advisory_lock(hashtextextended('hermes.apply_receipts', 0))$$) AS l(x boolean)), false,
  'until this transaction ends, no other session can take it (a second applier would be busy)');
SELECT tap.dblink_disconnect('other') AS disconnected \gset
\else
SELECT skip('dblink is not available: no second session', 1);
\endif

-- Nothing to do.
SELECT pg_temp.counts() AS before \gset
SELECT is(app.apply_receipts(), '{"applied": 0}'::jsonb, 'an empty queue: applied 0');
SELECT is(pg_temp.counts(), :'before'::jsonb, 'and nothing is written');

-- In order: queued (answered at hand-off), sent, delivered.
SELECT pg_temp.handed_off(:'t', 'SM-1') AS a1 \gset
SELECT is(pg_temp.pending_receipts(), 1, 'the status answered at hand-off waits in the inbox');
SELECT results_eq(format('SELECT a_status, provider_status, rank, m_status FROM pg_temp.state(%L)', :'a1'),
  $$VALUES ('handed_off', NULL::text, 0, 'sent')$$, 'not applied before app.apply_receipts runs');
SELECT is(app.apply_receipts(), '{"applied": 1, "attempts_changed": 1, "handoffs_recorded": 0}'::jsonb,
  'queued: one receipt applied, one attempt changed');
SELECT results_eq(format('SELECT * FROM pg_temp.state(%L)', :'a1'),
  $$VALUES ('handed_off', 'queued', 20, NULL::text, NULL::text, 'sent', NULL::text, NULL::text, NULL::timestamptz)$$,
  'the attempt has provider status queued (rank 20), the message is sent');
SELECT pg_temp.cb(:'a1', 'SM-1', 'sent') IS NOT NULL AS r \gset
SELECT is(app.apply_receipts(), '{"applied": 1, "attempts_changed": 1, "handoffs_recorded": 0}'::jsonb, 'sent: applied');
SELECT results_eq(format('SELECT a_status, provider_status, rank, m_status, completed_at FROM pg_temp.state(%L)', :'a1'),
  $$VALUES ('handed_off', 'sent', 40, 'sent', NULL::timestamptz)$$, 'provider status sent (rank 40)');
SELECT pg_temp.cb(:'a1', 'SM-1', 'delivered') IS NOT NULL AS r \gset
SELECT is(app.apply_receipts(), '{"applied": 1, "attempts_changed": 1, "handoffs_recorded": 0}'::jsonb,
  'delivered: applied');
SELECT results_eq(format('SELECT *, (SELECT sent_at FROM app.messages WHERE id = pg_temp.message_of(%L)) FROM pg_temp.state(%L)',
                         :'a1', :'a1'),
  $$VALUES ('delivered', 'delivered', 100, NULL::text, NULL::text, 'delivered', NULL::text, NULL::text, now(), now())$$,
  'attempt and message delivered, completed_at set: terminal');
SELECT results_eq(format($$SELECT e.provider_status, e.dedupe_key, e.details - 'receipt_id', r.provider_status, r.source
                           FROM app.message_events e JOIN app.receipts r ON r.id = (e.details ->> 'receipt_id')::bigint
                          WHERE e.message_id = pg_temp.message_of(%L) AND e.event_type = 'provider_status' ORDER BY e.id$$, :'a1'),
  $$VALUES ('queued', 'twilio:SM-1:queued', '{"provider_message_id": "SM-1", "source": "handoff", "known_status": true}'::jsonb,
            'queued', 'handoff'),
           ('sent', 'twilio:SM-1:sent', '{"provider_message_id": "SM-1", "source": "callback", "known_status": true}'::jsonb,
            'sent', 'callback'),
           ('delivered', 'twilio:SM-1:delivered',
            '{"provider_message_id": "SM-1", "source": "callback", "known_status": true}'::jsonb, 'delivered', 'callback')$$,
  'one provider_status event per receipt, deduplicated on twilio:SID:status, naming its receipt');
SELECT is(pg_temp.pending_receipts(), 0, 'the queue is empty after applying');
SELECT is((SELECT count(*)::int FROM app.receipts WHERE attempt_id = :'a1'), 3, 'the inbox keeps every receipt');

-- Duplicates.
SELECT pg_temp.counts() AS before \gset
SELECT is(pg_temp.cb(:'a1', 'SM-1', 'delivered'), '{"duplicate": true, "queued": false}'::jsonb,
  'delivered again: duplicate, not queued');
SELECT is(pg_temp.cb(:'a1', 'SM-1', 'queued'), '{"duplicate": true, "queued": false}'::jsonb,
  'the hand-off''s status as a callback: duplicate too (one inbox, whatever the path)');
SELECT is(app.apply_receipts(), '{"applied": 0}'::jsonb, 'nothing to apply');
SELECT is(pg_temp.counts(), :'before'::jsonb, 'duplicates write nothing: no receipt, queue row, event or change');

-- Reversed order, in one batch: the same end state.
SELECT pg_temp.handed_off(:'t', 'SM-2', 'accepted') AS a2 \gset
SELECT pg_temp.cb(:'a2', 'SM-2', 'delivered') IS NOT NULL AS r1, pg_temp.cb(:'a2', 'SM-2', 'sent') IS NOT NULL AS r2,
       pg_temp.cb(:'a2', 'SM-2', 'queued') IS NOT NULL AS r3 \gset
SELECT is(app.apply_receipts(), '{"applied": 4, "attempts_changed": 1, "handoffs_recorded": 0}'::jsonb,
  'accepted (at hand-off), then delivered, sent, queued in one batch: four applied, one change');
SELECT results_eq(format('SELECT * FROM pg_temp.state(%L)', :'a2'), format('SELECT * FROM pg_temp.state(%L)', :'a1'),
  'reversed in one batch: the same end state as in order (delivered, completed)');
SELECT is((SELECT array_agg(provider_status) FROM pg_temp.receipt_events(:'a2')),
  ARRAY['accepted', 'delivered', 'sent', 'queued'], 'every receipt is in the ledger, in arrival order');

-- Reversed order, across batches.
SELECT pg_temp.handed_off(:'t', 'SM-3', 'accepted') AS a3 \gset
SELECT pg_temp.cb(:'a3', 'SM-3', 'delivered') IS NOT NULL AS r \gset
SELECT app.apply_receipts() IS NOT NULL AS x \gset
SELECT pg_temp.cb(:'a3', 'SM-3', 'sent') IS NOT NULL AS r \gset
SELECT is(app.apply_receipts(), '{"applied": 1, "attempts_changed": 0, "handoffs_recorded": 0}'::jsonb,
  'sent a batch after delivered: applied as an event, changes nothing');
SELECT pg_temp.cb(:'a3', 'SM-3', 'queued') IS NOT NULL AS r \gset
SELECT is(app.apply_receipts() -> 'attempts_changed', '0'::jsonb, 'queued after that: changes nothing');
SELECT results_eq(format('SELECT * FROM pg_temp.state(%L)', :'a3'), format('SELECT * FROM pg_temp.state(%L)', :'a1'),
  'reversed across batches: the same end state');

-- Two terminal statuses: the first to arrive wins, in one batch or across batches.
SELECT pg_temp.handed_off(:'t', 'SM-4') AS a4 \gset
SELECT pg_temp.cb(:'a4', 'SM-4', 'delivered') IS NOT NULL AS r1,
       pg_temp.cb(:'a4', 'SM-4', 'undelivered', '30003', 'Unreachable destination handset') IS NOT NULL AS r2 \gset
SELECT is(app.apply_receipts(), '{"applied": 3, "attempts_changed": 1, "handoffs_recorded": 0}'::jsonb,
  'queued, delivered, undelivered in one batch: one change');
SELECT results_eq(format('SELECT * FROM pg_temp.state(%L)', :'a4'),
  $$VALUES ('delivered', 'delivered', 100, NULL::text, NULL::text, 'delivered', NULL::text, NULL::text, now())$$,
  'delivered then undelivered in one batch: delivered wins, without the error');
SELECT results_eq(format('SELECT provider_status, error_code FROM pg_temp.receipt_events(%L)', :'a4'),
  $$VALUES ('queued', NULL::text), ('delivered', NULL), ('undelivered', 'twilio:30003')$$,
  'the undelivered receipt is logged with its error code, not applied');
SELECT pg_temp.handed_off(:'t', 'SM-5') AS a5 \gset
SELECT pg_temp.cb(:'a5', 'SM-5', 'undelivered', '30003', 'Unreachable destination handset') IS NOT NULL AS r1,
       pg_temp.cb(:'a5', 'SM-5', 'delivered') IS NOT NULL AS r2 \gset
SELECT app.apply_receipts() IS NOT NULL AS x \gset
SELECT results_eq(format('SELECT * FROM pg_temp.state(%L)', :'a5'),
  $$VALUES ('undelivered', 'undelivered', 100, 'twilio:30003', 'Unreachable destination handset',
            'undelivered', 'twilio:30003', 'Unreachable destination handset', now())$$,
  'undelivered then delivered: undelivered wins (arrival decides, not the status), with its error');
SELECT pg_temp.handed_off(:'t', 'SM-6') AS a6 \gset
SELECT pg_temp.cb(:'a6', 'SM-6', 'delivered') IS NOT NULL AS r1, pg_temp.cb(:'a6', 'SM-6', 'read') IS NOT NULL AS r2 \gset
SELECT app.apply_receipts() IS NOT NULL AS x \gset
SELECT results_eq(format('SELECT a_status, provider_status, rank, m_status FROM pg_temp.state(%L)', :'a6'),
  $$VALUES ('delivered', 'read', 110, 'delivered')$$,
  'delivered then read in one batch: read (110) outranks delivered (100), as it would a batch later; the message stays delivered');
SELECT pg_temp.handed_off(:'t', 'SM-7') AS a7 \gset
SELECT pg_temp.cb(:'a7', 'SM-7', 'failed', '30008', 'Unknown error') IS NOT NULL AS r \gset
SELECT app.apply_receipts() IS NOT NULL AS x \gset
SELECT pg_temp.cb(:'a7', 'SM-7', 'delivered') IS NOT NULL AS r \gset
SELECT is(app.apply_receipts(), '{"applied": 1, "attempts_changed": 0, "handoffs_recorded": 0}'::jsonb,
  'delivered a batch after failed: not applied');
SELECT results_eq(format('SELECT a_status, provider_status, a_error, m_status, m_error, completed_at FROM pg_temp.state(%L)', :'a7'),
  $$VALUES ('failed', 'failed', 'twilio:30008', 'failed', 'twilio:30008', now())$$, 'failed stays, with its error');

-- read (WhatsApp) implies delivered and may come first.
SELECT pg_temp.handed_off(:'t', 'SM-8') AS a8 \gset
SELECT pg_temp.cb(:'a8', 'SM-8', 'read') IS NOT NULL AS r \gset
SELECT app.apply_receipts() IS NOT NULL AS x \gset
SELECT results_eq(format('SELECT a_status, provider_status, rank, m_status, completed_at FROM pg_temp.state(%L)', :'a8'),
  $$VALUES ('delivered', 'read', 110, 'delivered', now())$$, 'read alone: attempt and message delivered');
SELECT pg_temp.cb(:'a8', 'SM-8', 'delivered') IS NOT NULL AS r \gset
SELECT is(app.apply_receipts() -> 'attempts_changed', '0'::jsonb, 'the late delivered changes nothing');

-- Each terminal Twilio status, and the message status it means.
CREATE TEMP TABLE terminal (provider_status text, a_status text, rank int, m_status text, completed_at timestamptz);
SELECT set_config('hermes_test.tenant', :'t', true) IS NOT NULL AS s \gset
DO $$
DECLARE
  v_a uuid;
  v_status text;
BEGIN
  FOREACH v_status IN ARRAY ARRAY['delivered', 'undelivered', 'failed', 'canceled', 'read'] LOOP
    v_a := pg_temp.handed_off(current_setting('hermes_test.tenant')::uuid, 'SM-T-' || v_status);
    PERFORM pg_temp.cb(v_a, 'SM-T-' || v_status, v_status);
    PERFORM app.apply_receipts();
    INSERT INTO terminal SELECT v_status, s.a_status, s.rank, s.m_status, s.completed_at FROM pg_temp.state(v_a) s;
  END LOOP;
END
$$;
SELECT results_eq('SELECT * FROM terminal ORDER BY provider_status',
  $$VALUES ('canceled', 'failed', 100, 'failed', now()), ('delivered', 'delivered', 100, 'delivered', now()),
           ('failed', 'failed', 100, 'failed', now()), ('read', 'delivered', 110, 'delivered', now()),
           ('undelivered', 'undelivered', 100, 'undelivered', now())$$,
  'delivered, undelivered, failed, canceled (-> failed) and read (-> delivered) each end attempt and message');

-- A receipt for an attempt whose hand-off was never recorded records it.
SELECT pg_temp.handed_off(:'t', NULL) AS a9 \gset
SELECT is(pg_temp.cb(:'a9', 'SM-9', 'sent'), '{"duplicate": false, "queued": true}'::jsonb,
  'a callback for a claimed attempt without provider id is taken');
SELECT is(app.apply_receipts(), '{"applied": 1, "attempts_changed": 1, "handoffs_recorded": 1}'::jsonb,
  'applied, recording one hand-off');
SELECT results_eq(format('SELECT status, provider_message_id, handed_off_at, provider_status FROM app.message_attempts WHERE id = %L', :'a9'),
  $$VALUES ('handed_off', 'SM-9', now(), 'sent')$$, 'the attempt is handed off with the receipt''s provider id');
SELECT results_eq(format('SELECT status, provider, provider_message_id, sent_at FROM app.messages WHERE id = pg_temp.message_of(%L)', :'a9'),
  $$VALUES ('sent', 'twilio', 'SM-9', now())$$, 'the message is sent, with the provider id');
SELECT results_eq(format($$SELECT event_type, status, details - 'receipt_id' FROM app.message_events
                           WHERE message_id = pg_temp.message_of(%L) AND event_type NOT IN ('accepted', 'claimed') ORDER BY id$$, :'a9'),
  $$VALUES ('handed_off', 'sent', '{"provider_message_id": "SM-9", "via": "receipt"}'::jsonb),
           ('provider_status', NULL, '{"provider_message_id": "SM-9", "source": "callback", "known_status": true}'::jsonb)$$,
  'a handed_off event (via receipt), then the receipt''s provider_status event');
SELECT is(app.claim_attempt(:'a9') ->> 'reason', 'attempt_handed_off', 'a later claim skips it: no resend');
SELECT pg_temp.attempt_of(pg_temp.new_message(:'t')) AS a10 \gset
SELECT pg_temp.cb(:'a10', 'SM-10', 'delivered') IS NOT NULL AS r \gset
SELECT is(app.apply_receipts(), '{"applied": 1, "attempts_changed": 1, "handoffs_recorded": 1}'::jsonb,
  'delivered for a never-claimed (pending) attempt: applied, hand-off recorded');
SELECT results_eq(format('SELECT a_status, provider_status, m_status, completed_at, (SELECT provider_message_id FROM app.message_attempts WHERE id = %L) FROM pg_temp.state(%L)', :'a10', :'a10'),
  $$VALUES ('delivered', 'delivered', 'delivered', now(), 'SM-10')$$, 'attempt and message delivered, with the provider id');
-- Two provider ids for one unrecorded hand-off in one batch: the first is the hand-off.
SELECT pg_temp.handed_off(:'t', NULL) AS a11 \gset
SELECT pg_temp.cb(:'a11', 'SM-11a', 'sent') IS NOT NULL AS r1, pg_temp.cb(:'a11', 'SM-11b', 'delivered') IS NOT NULL AS r2 \gset
SELECT is(app.apply_receipts(), '{"applied": 2, "attempts_changed": 1, "handoffs_recorded": 1}'::jsonb,
  'two receipts with different provider ids for an attempt without one: one hand-off');
SELECT results_eq(format('SELECT status, provider_message_id, provider_status FROM app.message_attempts WHERE id = %L', :'a11'),
  $$VALUES ('handed_off', 'SM-11a', 'sent')$$,
  'the first receipt''s provider id is the hand-off; the other''s delivered is not applied');
SELECT results_eq(format('SELECT provider_status, error_code FROM pg_temp.receipt_events(%L)', :'a11'),
  $$VALUES ('sent', NULL::text), ('delivered', 'provider_message_id_mismatch')$$, 'the other is logged as a mismatch');

-- A provider id that is not the attempt's: logged, not applied.
SELECT pg_temp.handed_off(:'t', 'SM-12') AS a12 \gset
SELECT app.apply_receipts() IS NOT NULL AS x \gset
SELECT pg_temp.cb(:'a12', 'SM-other', 'failed') IS NOT NULL AS r \gset
SELECT is(app.apply_receipts(), '{"applied": 1, "attempts_changed": 0, "handoffs_recorded": 0}'::jsonb,
  'a receipt with another provider id: applied as an event, no change');
SELECT results_eq(format($$SELECT a.status, a.provider_message_id, a.provider_status, m.status, m.provider_message_id
                           FROM app.message_attempts a JOIN app.messages m ON m.id = a.message_id WHERE a.id = %L$$, :'a12'),
  $$VALUES ('handed_off', 'SM-12', 'queued', 'sent', 'SM-12')$$, 'attempt and message unchanged');
SELECT results_eq(format($$SELECT error_code, dedupe_key, details ->> 'provider_message_id' FROM pg_temp.receipt_events(%L)
                           WHERE provider_status = 'failed'$$, :'a12'),
  $$VALUES ('provider_message_id_mismatch', 'twilio:SM-other:failed', 'SM-other')$$,
  'logged with error_code provider_message_id_mismatch');

-- A status Hermes does not know: stored, logged, not applied.
SELECT is(pg_temp.cb(:'a12', 'SM-12', 'partially_delivered'), '{"duplicate": false, "queued": true}'::jsonb,
  'an unknown status is taken into the inbox');
SELECT is(app.apply_receipts(), '{"applied": 1, "attempts_changed": 0, "handoffs_recorded": 0}'::jsonb, 'and not applied');
SELECT results_eq(format($$SELECT error_code, details ->> 'known_status' FROM pg_temp.receipt_events(%L)
                           WHERE provider_status = 'partially_delivered'$$, :'a12'),
  $$VALUES (NULL::text, 'false')$$, 'logged with known_status false');
SELECT results_eq(format('SELECT a_status, provider_status, rank, m_status FROM pg_temp.state(%L)', :'a12'),
  $$VALUES ('handed_off', 'queued', 20, 'sent')$$, 'the attempt and message are as they were');

-- Errors: kept unless a new one comes; the message only takes those of the status it moves to.
SELECT pg_temp.handed_off(:'t', 'SM-13') AS a13 \gset
SELECT pg_temp.cb(:'a13', 'SM-13', 'sending', '30001', 'Queue overflow') IS NOT NULL AS r \gset
SELECT app.apply_receipts() IS NOT NULL AS x \gset
SELECT results_eq(format('SELECT a_status, provider_status, a_error, a_message, m_status, m_error, m_message FROM pg_temp.state(%L)', :'a13'),
  $$VALUES ('handed_off', 'sending', 'twilio:30001', 'Queue overflow', 'sent', NULL::text, NULL::text)$$,
  'a non-terminal status with an error: the attempt keeps it, the message (not advanced) does not get it');
SELECT pg_temp.cb(:'a13', 'SM-13', 'sent', '', '') IS NOT NULL AS r1 \gset
SELECT app.apply_receipts() IS NOT NULL AS x \gset
SELECT pg_temp.cb(:'a13', 'SM-13', 'delivered') IS NOT NULL AS r2 \gset
SELECT app.apply_receipts() IS NOT NULL AS x \gset
SELECT results_eq(format('SELECT a_status, a_error, a_message, m_status, m_error, m_message FROM pg_temp.state(%L)', :'a13'),
  $$VALUES ('delivered', 'twilio:30001', 'Queue overflow', 'delivered', NULL::text, NULL::text)$$,
  'empty error fields erase nothing; delivered: the message takes no error it was not given');

-- Attempts that already ended take no provider status.
SELECT pg_temp.handed_off(:'t', NULL) AS a14 \gset
SELECT app.record_send_error(:'a14', 1, '21211', 'invalid To', 400) IS NOT NULL AS e \gset
SELECT pg_temp.cb(:'a14', 'SM-14', 'delivered') IS NOT NULL AS r \gset
SELECT is(app.apply_receipts() -> 'attempts_changed', '0'::jsonb, 'delivered for a failed attempt: no change');
SELECT results_eq(format('SELECT a_status, provider_status, rank, a_error, m_status, m_error FROM pg_temp.state(%L)', :'a14'),
  $$VALUES ('failed', NULL::text, 0, 'twilio:21211', 'failed', 'twilio:21211')$$, 'it stays failed');
SELECT (pg_temp.new_tenant('Suspended Co') -> 'tenant' ->> 'id') AS t2 \gset
SELECT pg_temp.attempt_of(pg_temp.new_message(:'t2')) AS a15 \gset
UPDATE app.tenants SET status = 'suspended' WHERE id = :'t2';
SELECT app.claim_attempt(:'a15') IS NOT NULL AS c \gset
SELECT pg_temp.cb(:'a15', 'SM-15', 'read') IS NOT NULL AS r \gset
SELECT app.apply_receipts() IS NOT NULL AS x \gset
SELECT results_eq(format('SELECT a_status, provider_status, rank, m_status FROM pg_temp.state(%L)', :'a15'),
  $$VALUES ('rejected', NULL::text, 0, 'rejected')$$, 'read for a rejected attempt: it stays rejected');

-- p_limit: the oldest receipts first, the rest stay queued.
SELECT pg_temp.handed_off(:'t', 'SM-16') AS a16 \gset
SELECT pg_temp.cb(:'a16', 'SM-16', 'sending') IS NOT NULL AS r1, pg_temp.cb(:'a16', 'SM-16', 'sent') IS NOT NULL AS r2,
       pg_temp.cb(:'a16', 'SM-16', 'delivered') IS NOT NULL AS r3 \gset
SELECT pg_temp.handed_off(:'t', 'SM-17') AS a17 \gset
SELECT array_agg(receipt_id ORDER BY receipt_id) AS queue FROM private.receipt_queue \gset
SELECT is(pg_temp.pending_receipts(), 5, 'five receipts pending');
SELECT is(app.apply_receipts(2), '{"applied": 2, "attempts_changed": 1, "handoffs_recorded": 0}'::jsonb,
  'p_limit 2: two applied');
SELECT is(ARRAY(SELECT receipt_id FROM private.receipt_queue ORDER BY receipt_id), (:'queue'::bigint[])[3:5],
  'the two oldest were taken; the three others wait in the queue');
SELECT results_eq(format('SELECT a_status, provider_status, rank FROM pg_temp.state(%L)', :'a16'),
  $$VALUES ('handed_off', 'sending', 30)$$, 'only the applied ones took effect (queued, sending: not delivered)');
SELECT is(app.apply_receipts(), '{"applied": 3, "attempts_changed": 2, "handoffs_recorded": 0}'::jsonb,
  'the next call applies the other three');
SELECT results_eq(format('SELECT a_status, provider_status FROM pg_temp.state(%L) UNION ALL SELECT a_status, provider_status FROM pg_temp.state(%L)',
                         :'a16', :'a17'),
  $$VALUES ('delivered', 'delivered'), ('handed_off', 'queued')$$, 'delivered, and the other attempt''s queued');
SELECT is(pg_temp.pending_receipts(), 0, 'the queue is empty');
SELECT is_empty($$SELECT r.id FROM app.receipts r
                   WHERE (SELECT count(*) FROM app.message_events e
                           WHERE e.event_type = 'provider_status' AND (e.details ->> 'receipt_id')::bigint = r.id) <> 1$$,
  'every receipt of the inbox became exactly one provider_status event');

-- The inbox is append-only, even for its owner.
SELECT count(*) AS receipts, min(tableoid::regclass::text) AS receipts_partition FROM app.receipts \gset
SELECT is(pg_temp.problem($$UPDATE app.receipts SET provider_status = 'delivered'$$), 'HM405 append_only',
  'UPDATE on app.receipts: HM405 append_only');
SELECT is(pg_temp.problem($$DELETE FROM app.receipts$$), 'HM405 append_only', 'DELETE: HM405 append_only');
SELECT is(pg_temp.problem($$TRUNCATE app.receipts$$), 'HM405 append_only', 'TRUNCATE: HM405 append_only');
SELECT is(pg_temp.problem(format('UPDATE %s SET payload = %L', :'receipts_partition', '{"x": 1}')),
  'HM405 append_only', 'UPDATE straight on a partition: HM405 too');
SELECT is(pg_temp.problem(format('TRUNCATE %s', :'receipts_partition')),
  'HM405 append_only', 'TRUNCATE of a partition: HM405 too');
SELECT is((SELECT count(*) FROM app.receipts), :receipts::bigint, 'every receipt is still there');

SELECT ok((SELECT prosecdef FROM pg_proc WHERE oid = 'app.apply_receipts(int)'::regprocedure)
          AND has_function_privilege('hermes_worker', 'app.apply_receipts(int)', 'EXECUTE')
          AND NOT has_function_privilege('hermes_api', 'app.apply_receipts(int)', 'EXECUTE'),
  'SECURITY DEFINER; the workers may apply receipts, the API may not');

SELECT * FROM finish();
ROLLBACK;
