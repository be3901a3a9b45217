-- app.due_lookups / app.record_lookups: lost-receipt recovery. An attempt handed off
-- longer than receipt_lookup_after ago (private.settings, 5 minutes) and still without
-- a final status is handed to a worker to look up at the provider, and stamped, so it
-- comes again only after receipt_lookup_every (10 minutes). The answers go into the
-- receipt inbox (source 'lookup', deduplicated with the callbacks) and
-- app.apply_receipts applies them like any receipt.
BEGIN;
\ir ../../helpers.psql
SELECT plan(32);

SELECT (pg_temp.new_tenant('Lookup Co') -> 'tenant' ->> 'id') AS t \gset
-- A hand-off, its answered status applied, handed off p_ago ago.
CREATE FUNCTION pg_temp.handed_off_ago(p_sid text, p_ago interval) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
  v_a uuid := pg_temp.handed_off(current_setting('hermes_test.tenant')::uuid, p_sid);
BEGIN
  PERFORM app.apply_receipts();
  UPDATE app.message_attempts SET handed_off_at = now() - p_ago WHERE id = v_a;
  RETURN v_a;
END
$$;
-- The attempts of a due_lookups answer, as a set.
CREATE FUNCTION pg_temp.due(p_answer jsonb) RETURNS TABLE (attempt_id uuid, provider text, provider_message_id text)
LANGUAGE sql AS $$
  SELECT (d ->> 'attempt_id')::uuid, d ->> 'provider', d ->> 'provider_message_id' FROM jsonb_array_elements(p_answer) d
$$;
CREATE FUNCTION pg_temp.lookup(p_attempt uuid, p_sid text, p_status text, p_code text DEFAULT NULL) RETURNS jsonb
LANGUAGE sql AS $$
  SELECT jsonb_strip_nulls(jsonb_build_object('attempt_id', p_attempt, 'provider', 'twilio', 'provider_message_id', p_sid,
                                              'provider_status', p_status, 'error_code', p_code))
$$;
SELECT set_config('hermes_test.tenant', :'t', true) IS NOT NULL AS s \gset

SELECT pg_temp.handed_off_ago('SM-old', interval '5 minutes 1 second') AS a_old \gset
SELECT pg_temp.handed_off_ago('SM-older', interval '1 hour') AS a_older \gset
SELECT pg_temp.handed_off_ago('SM-edge', interval '5 minutes') AS a_edge \gset
SELECT pg_temp.handed_off_ago('SM-recent', interval '2 minutes') AS a_recent \gset
SELECT pg_temp.handed_off_ago('SM-final', interval '1 hour') AS a_final \gset
SELECT app.record_receipt('twilio', :'a_final', 'SM-final', 'delivered') IS NOT NULL AS r \gset
SELECT app.apply_receipts() IS NOT NULL AS x \gset
SELECT pg_temp.handed_off(:'t', NULL) AS a_claimed \gset
UPDATE app.message_attempts SET claimed_at = now() - interval '1 hour', last_claimed_at = now() - interval '1 hour'
 WHERE id = :'a_claimed';
SELECT pg_temp.attempt_of(pg_temp.new_message(:'t')) AS a_pending \gset
SELECT is(pg_temp.attempt_status(:'a_final'), 'delivered', 'set-up: one of the old hand-offs already has its final status');

SELECT app.due_lookups() AS due1 \gset
SELECT set_eq(format('SELECT * FROM pg_temp.due(%L)', :'due1'),
  format($$VALUES (%L::uuid, 'twilio', 'SM-old'), (%L::uuid, 'twilio', 'SM-older')$$, :'a_old', :'a_older'),
  'due: the open hand-offs older than 5 minutes, with provider and provider id (not one of exactly 5 minutes, a recent, a final, a claimed or a pending one)');
SELECT is((SELECT array_agg(DISTINCT (d ->> 'environment') || ':' || coalesce(d ->> 'provider_account_id', 'deployment'))
             FROM jsonb_array_elements(:'due1'::jsonb) d),
  ARRAY['test:deployment'], 'each names the account to ask (none of its own: the deployment''s) and the tenant''s environment');
SELECT results_eq(format($$SELECT lookup_count, last_lookup_at FROM app.message_attempts WHERE id IN (%L, %L)$$, :'a_old', :'a_older'),
  $$VALUES (1, now()), (1, now())$$, 'both are stamped: looked up once, now');
SELECT is((SELECT count(*)::int FROM app.message_attempts WHERE lookup_count > 0 OR last_lookup_at IS NOT NULL), 2,
  'no other attempt is stamped');
SELECT results_eq(format('SELECT status, provider_status FROM app.message_attempts WHERE id IN (%L, %L)', :'a_old', :'a_older'),
  $$VALUES ('handed_off', 'queued'), ('handed_off', 'queued')$$, 'stamping changes nothing else');
SELECT is(app.due_lookups(), '[]'::jsonb, 'called again at once: nothing (another worker does not look them up too)');

-- Again after receipt_lookup_every (10 minutes), not before.
UPDATE app.message_attempts SET last_lookup_at = now() - interval '10 minutes' WHERE id = :'a_old';
UPDATE app.message_attempts SET last_lookup_at = now() - interval '10 minutes 1 second' WHERE id = :'a_older';
SELECT app.due_lookups() AS due2 \gset
SELECT set_eq(format('SELECT attempt_id FROM pg_temp.due(%L)', :'due2'), format($$VALUES (%L::uuid)$$, :'a_older'),
  'looked up more than 10 minutes ago: due again; exactly 10 minutes ago: not yet');
SELECT results_eq(format('SELECT lookup_count, last_lookup_at FROM app.message_attempts WHERE id = %L', :'a_older'),
  $$VALUES (2, now())$$, 'stamped again: lookup_count 2');

-- p_limit: the longest silent first.
UPDATE app.message_attempts SET last_lookup_at = now() - interval '11 minutes' WHERE id = :'a_old';
UPDATE app.message_attempts SET last_lookup_at = now() - interval '12 minutes' WHERE id = :'a_older';
SELECT is(app.due_lookups(0), '[]'::jsonb, 'p_limit 0: nothing');
SELECT set_eq(format('SELECT attempt_id FROM pg_temp.due(%L)', app.due_lookups(1)), format($$VALUES (%L::uuid)$$, :'a_older'),
  'p_limit 1: one, the longest without sign of life');
SELECT set_eq(format('SELECT attempt_id FROM pg_temp.due(%L)', app.due_lookups(1)), format($$VALUES (%L::uuid)$$, :'a_old'),
  'the next call takes the other');
SELECT is(app.due_lookups(), '[]'::jsonb, 'and then none is due');

-- The settings decide.
UPDATE private.settings SET value = '1 minute' WHERE key = 'receipt_lookup_after';
SELECT set_eq(format('SELECT attempt_id FROM pg_temp.due(%L)', app.due_lookups()),
  format($$VALUES (%L::uuid), (%L::uuid)$$, :'a_edge', :'a_recent'),
  'receipt_lookup_after 1 minute: the hand-offs of 2 and 5 minutes ago are due');
UPDATE private.settings SET value = '5 minutes' WHERE key = 'receipt_lookup_after';
UPDATE private.settings SET value = '30 seconds' WHERE key = 'receipt_lookup_every';
UPDATE app.message_attempts SET last_lookup_at = now() - interval '31 seconds' WHERE id = :'a_old';
SELECT set_eq(format('SELECT attempt_id FROM pg_temp.due(%L)', app.due_lookups()), format($$VALUES (%L::uuid)$$, :'a_old'),
  'receipt_lookup_every 30 seconds: looked up 31 seconds ago is due again');
UPDATE private.settings SET value = '10 minutes' WHERE key = 'receipt_lookup_every';

-- The answers: into the inbox, then applied.
SELECT pg_temp.counts() AS before \gset
SELECT is(app.record_lookups(jsonb_build_array(pg_temp.lookup(:'a_old', 'SM-old', 'delivered'),
                                               pg_temp.lookup(:'a_older', 'SM-older', 'undelivered', '30003'))),
  '{"new": 2}'::jsonb, 'two answers: two new statuses');
SELECT results_eq($$SELECT attempt_id, provider_message_id, provider_status, error_code, source, q.receipt_id IS NOT NULL
                      FROM app.receipts r LEFT JOIN private.receipt_queue q ON q.receipt_id = r.id
                     WHERE source = 'lookup' ORDER BY provider_message_id$$,
  format($$VALUES (%L::uuid, 'SM-old', 'delivered', NULL::text, 'lookup', true),
                  (%L::uuid, 'SM-older', 'undelivered', '30003', 'lookup', true)$$, :'a_old', :'a_older'),
  'in the inbox as source lookup, queued');
SELECT is(pg_temp.counts() - 'receipts' - 'receipt_queue', :'before'::jsonb - 'receipts' - 'receipt_queue',
  'nothing else is written before the applier runs');
SELECT is(app.record_lookups(jsonb_build_array(pg_temp.lookup(:'a_old', 'SM-old', 'delivered'))), '{"new": 0}'::jsonb,
  'the same answer again: nothing new');
SELECT is(app.record_lookups(jsonb_build_array(pg_temp.lookup(:'a_old', 'SM-old', 'queued'))), '{"new": 0}'::jsonb,
  'a status already received another way (the hand-off''s queued): nothing new');
SELECT is(app.record_lookups(jsonb_build_array(pg_temp.lookup(private.uuid7(), 'SM-x', 'delivered'))), '{"new": 0}'::jsonb,
  'an unknown attempt: skipped');
SELECT is(app.record_lookups('[]'), '{"new": 0}'::jsonb, 'no answers: nothing');
SELECT is(app.record_lookups(NULL), '{"new": 0}'::jsonb, 'NULL: nothing');
SELECT is(app.apply_receipts(), '{"applied": 2, "attempts_changed": 2, "handoffs_recorded": 0}'::jsonb,
  'the applier applies both');
SELECT results_eq(format('SELECT * FROM pg_temp.state(%L)', :'a_old'),
  $$VALUES ('delivered', 'delivered', 100, NULL::text, NULL::text, 'delivered', NULL::text, NULL::text, now())$$,
  'the lost delivered receipt, looked up: attempt and message delivered (terminal)');
SELECT results_eq(format('SELECT a_status, a_error, m_status, m_error, completed_at FROM pg_temp.state(%L)', :'a_older'),
  $$VALUES ('undelivered', 'twilio:30003', 'undelivered', 'twilio:30003', now())$$,
  'the looked-up undelivered, with its error code');
SELECT is((SELECT details ->> 'source' FROM app.message_events
            WHERE attempt_id = :'a_old' AND event_type = 'provider_status' AND provider_status = 'delivered'), 'lookup',
  'the provider_status event says it came from a lookup');
UPDATE app.message_attempts SET last_lookup_at = now() - interval '1 day' WHERE id IN (:'a_old', :'a_older');
SELECT ok(NOT EXISTS (SELECT 1 FROM pg_temp.due(app.due_lookups()) d WHERE d.attempt_id IN (:'a_old', :'a_older')),
  'final now: never due again');
SELECT is(app.record_lookups(jsonb_build_array(pg_temp.lookup(:'a_old', 'SM-old', 'failed'))), '{"new": 1}'::jsonb,
  'a contradicting later answer is stored');
SELECT is(app.apply_receipts() -> 'attempts_changed', '0'::jsonb, 'but the first terminal status stays');

SELECT ok(has_function_privilege('hermes_worker', 'app.due_lookups(integer)', 'EXECUTE')
          AND has_function_privilege('hermes_worker', 'app.record_lookups(jsonb)', 'EXECUTE')
          AND NOT has_function_privilege('hermes_api', 'app.due_lookups(integer)', 'EXECUTE')
          AND NOT has_function_privilege('hermes_api', 'app.record_lookups(jsonb)', 'EXECUTE'),
  'the workers may look up, the API may not');
SELECT ok((SELECT bool_and(prosecdef) FROM pg_proc
            WHERE oid IN ('app.due_lookups(integer)'::regprocedure, 'app.record_lookups(jsonb)'::regprocedure)),
  'both are SECURITY DEFINER');

SELECT * FROM finish();
ROLLBACK;
