-- private.log_event: appends to a message's ledger; deduplicated on dedupe_key.
BEGIN;
\ir ../../helpers.psql
SELECT plan(13);

SELECT private.uuid7() AS m1, private.uuid7() AS m2, gen_random_uuid() AS tenant_id, gen_random_uuid() AS attempt_id \gset
SELECT private.uuid7_time(:'m1') AS c1, private.uuid7_time(:'m2') AS c2 \gset

SELECT is(private.log_event(:'m1', :'c1', :'tenant_id', :'attempt_id', 'accepted', 'queued'), true,
  'an event without dedupe key is written (true)');
SELECT results_eq(
  format($$SELECT message_id, message_created_at, tenant_id, attempt_id, event_type, status, provider_status,
                  error_code, details, dedupe_key, created_at
             FROM app.message_events WHERE message_id = %L$$, :'m1'),
  format($$VALUES (%L::uuid, %L::timestamptz, %L::uuid, %L::uuid, 'accepted', 'queued', NULL::text, NULL::text,
                   '{}'::jsonb, NULL::text, now())$$, :'m1', :'c1', :'tenant_id', :'attempt_id'),
  'the row holds what was passed, details {} and the transaction time');
SELECT is(private.log_event(:'m1', :'c1', :'tenant_id', :'attempt_id', 'accepted', 'queued'), true,
  'the same event again without dedupe key is written again');
SELECT is(private.log_event(:'m1', :'c1', :'tenant_id', :'attempt_id', 'provider_status', NULL, 'delivered',
                            'twilio:0', '{"x": 1}', 'twilio:SM1:delivered'), true,
  'an event with a new dedupe key is written (true)');
SELECT is(private.log_event(:'m1', :'c1', :'tenant_id', :'attempt_id', 'provider_status', NULL, 'delivered',
                            NULL, '{"x": 2}', 'twilio:SM1:delivered'), false,
  'the same dedupe key again is ignored (false)');
SELECT is((SELECT count(*)::int FROM app.message_events WHERE message_id = :'m1' AND dedupe_key IS NOT NULL), 1,
  'one row for the dedupe key');
SELECT is((SELECT details FROM app.message_events WHERE dedupe_key = 'twilio:SM1:delivered'), '{"x": 1}'::jsonb,
  'the first event is kept');
SELECT is(private.log_event(:'m2', :'c2', :'tenant_id', NULL, 'provider_status', NULL, 'delivered',
                            NULL, NULL, 'twilio:SM1:delivered'), true,
  'the same dedupe key on another message is written (dedupe is per message)');
SELECT is((SELECT details FROM app.message_events WHERE message_id = :'m2'), '{}'::jsonb,
  'NULL details are stored as {}');
SELECT throws_ok(format($$SELECT private.log_event(%L, %L, %L, NULL, 'exploded', NULL)$$, :'m1', :'c1', :'tenant_id'),
  '23514', NULL, 'an unknown event type violates the check constraint');
SELECT is((SELECT count(*)::int FROM app.message_events), 4, 'four rows in all');
-- Every event type the functions log is allowed (reconcile_ambiguous and requeued included).
SELECT is(ARRAY(SELECT t || ': ' || r
                  FROM unnest(ARRAY['accepted', 'claimed', 'reclaimed', 'reclaim_deferred', 'reconciled',
                                    'reconcile_ambiguous', 'resend', 'handed_off', 'requeued', 'send_error',
                                    'retry_scheduled', 'provider_status', 'rejected']) t,
                       pg_temp.problem(format($$SELECT private.log_event(%L, %L, %L, NULL, %L, NULL)$$,
                                              :'m2', :'c2', :'tenant_id', t)) r
                 WHERE r <> 'no error'),
  '{}'::text[], 'each of the 13 event types is accepted by the check constraint');
SELECT is((SELECT count(*)::int FROM app.message_events WHERE message_id = :'m2'), 1 + 13, 'and written');

SELECT * FROM finish();
ROLLBACK;
