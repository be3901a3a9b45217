-- private.insert_receipts: appends receipts to the inbox (app.receipts) in the
-- partition of their message, deduplicated on (provider, provider message id, status)
-- whatever their source, and queues the new ones for app.apply_receipts. Receipts of
-- unknown attempts and incomplete ones are skipped. Returns how many were new.
BEGIN;
\ir ../../helpers.psql
CREATE FUNCTION pg_temp.stored(p_outcomes jsonb) RETURNS bigint LANGUAGE sql AS $f$
  SELECT count(*) FROM jsonb_array_elements(p_outcomes) o WHERE o ->> 'outcome' = 'queued'
$f$;
SELECT plan(16);

SELECT (pg_temp.new_tenant('Inbox Co') -> 'tenant' ->> 'id') AS t \gset
SELECT pg_temp.handed_off(:'t', NULL) AS a \gset
SELECT message_created_at AS c FROM app.message_attempts WHERE id = :'a' \gset
CREATE FUNCTION pg_temp.r(p_attempt uuid, p_sid text, p_status text, p_extra jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE sql AS $$
  SELECT jsonb_build_object('attempt_id', p_attempt, 'provider', 'twilio', 'provider_message_id', p_sid,
                            'provider_status', p_status) || p_extra
$$;

SELECT pg_temp.counts() AS before \gset
SELECT is(pg_temp.stored(private.insert_receipts('lookup', jsonb_build_array(
    pg_temp.r(:'a', 'SM-1', 'sent'),
    pg_temp.r(:'a', 'SM-1', 'undelivered', '{"error_code": "30003", "error_message": "Unreachable", "payload": {"k": "v"}}')))),
  2::bigint, 'two receipts: two new');
SELECT results_eq(format($$SELECT message_created_at, attempt_id, tenant_id, provider, provider_message_id, provider_status,
                                  error_code, error_message, source, payload, received_at
                             FROM app.receipts ORDER BY provider_status$$),
  format($$VALUES (%L::timestamptz, %L::uuid, %L::uuid, 'twilio', 'SM-1', 'sent', NULL::text, NULL::text, 'lookup', '{}'::jsonb, now()),
                  (%L, %L, %L, 'twilio', 'SM-1', 'undelivered', '30003', 'Unreachable', 'lookup', '{"k": "v"}', now())$$,
         :'c', :'a', :'t', :'c', :'a', :'t'),
  'stored in the message''s partition, with the attempt''s tenant, the source, the error and the payload (default {})');
SELECT is((SELECT tableoid::regclass::text FROM app.receipts LIMIT 1),
  'app.receipts_p' || to_char(:'c'::timestamptz AT TIME ZONE 'UTC', 'YYYY_MM'), 'in the monthly partition of the message');
SELECT set_eq('SELECT receipt_id, message_created_at FROM private.receipt_queue', 'SELECT id, message_created_at FROM app.receipts',
  'both are queued for the applier');
SELECT is(pg_temp.counts() - 'receipts' - 'receipt_queue', :'before'::jsonb - 'receipts' - 'receipt_queue',
  'nothing else is written: no event, no change to the attempt');
SELECT results_eq(format('SELECT status, provider_message_id, provider_status FROM app.message_attempts WHERE id = %L', :'a'),
  $$VALUES ('claimed', NULL::text, NULL::text)$$, 'the attempt is untouched until the applier runs');

-- Deduplication.
SELECT pg_temp.counts() AS before \gset
SELECT is(pg_temp.stored(private.insert_receipts('callback', jsonb_build_array(pg_temp.r(:'a', 'SM-1', 'sent')))), 0::bigint,
  'the same provider id and status from another source: not new');
SELECT is(pg_temp.stored(private.insert_receipts('handoff', jsonb_build_array(
    pg_temp.r(:'a', 'SM-1', 'delivered'), pg_temp.r(:'a', 'SM-1', 'delivered'), pg_temp.r(:'a', 'SM-1', 'sent')))),
  1::bigint, 'a status twice in one call and one already stored: one new');
SELECT is(pg_temp.counts() - 'receipts' - 'receipt_queue', :'before'::jsonb - 'receipts' - 'receipt_queue',
  'still nothing else written');
SELECT results_eq('SELECT provider_status, source FROM app.receipts ORDER BY provider_status',
  $$VALUES ('delivered', 'handoff'), ('sent', 'lookup'), ('undelivered', 'lookup')$$,
  'each status of a provider message is stored once, as first received');
SELECT is((SELECT count(*)::int FROM private.receipt_queue), 3, 'and queued once');
SELECT is(pg_temp.stored(private.insert_receipts('callback', jsonb_build_array(pg_temp.r(:'a', 'SM-2', 'sent')))), 1::bigint,
  'the same status of another provider id is new (never deduplicated on the attempt)');

-- Skipped (attempt_not_found, or nothing to store).
SELECT pg_temp.counts() AS before \gset
SELECT is(pg_temp.stored(private.insert_receipts('lookup', jsonb_build_array(
    pg_temp.r(private.uuid7(), 'SM-x', 'sent'), pg_temp.r(gen_random_uuid(), 'SM-x', 'sent'), pg_temp.r(NULL, 'SM-x', 'sent'),
    pg_temp.r(:'a', '', 'failed'), pg_temp.r(:'a', NULL, 'failed'), pg_temp.r(:'a', 'SM-1', ''), pg_temp.r(:'a', 'SM-1', NULL)))),
  0::bigint, 'unknown or missing attempts, empty or missing provider id or status: skipped, no error');
SELECT is(pg_temp.stored(private.insert_receipts('lookup', '[]')), 0::bigint, 'no receipts: none');
SELECT is(pg_temp.counts(), :'before'::jsonb, 'nothing written');

SELECT ok((SELECT NOT prosecdef FROM pg_proc WHERE oid = 'private.insert_receipts(text,jsonb)'::regprocedure)
          AND NOT has_function_privilege('hermes_api', 'private.insert_receipts(text,jsonb)', 'EXECUTE')
          AND NOT has_function_privilege('hermes_worker', 'private.insert_receipts(text,jsonb)', 'EXECUTE'),
  'not SECURITY DEFINER, and no client role may call it');

SELECT * FROM finish();
ROLLBACK;
