-- private.validate_consent and private.record_consents: what a consent event may say,
-- and how events are recorded (set-based, per-item results, the address lock taken,
-- one audit row); app.consent_events is append-only.
BEGIN;
\ir ../../helpers.psql
SELECT plan(28);

SELECT (pg_temp.new_tenant('Consent Co') -> 'tenant' ->> 'id') AS t \gset

-- Validation: one code per kind of mistake, no fields alongside a problem.
CREATE FUNCTION pg_temp.code(p_event jsonb, p_operator boolean DEFAULT false) RETURNS text
LANGUAGE sql AS $$
  SELECT coalesce(problem_status || ' ' || problem_code, 'valid')
         || CASE WHEN problem_code IS NOT NULL AND num_nonnulls(address, kind, channel, scope, source) > 0
                 THEN ' +fields' ELSE '' END
    FROM private.validate_consent(p_event, p_operator)
$$;
SELECT results_eq($$SELECT address, channel, kind, scope, scope_ref, source, evidence, occurred_at = now()
                      FROM private.validate_consent('{"address": "+14155550100", "kind": "opt_out"}', false)$$,
  $$VALUES ('+14155550100', 'all', 'opt_out', 'tenant', '', 'api', '{}'::jsonb, true)$$,
  'defaults: channel all, scope tenant, source api, no evidence, occurred now');
SELECT results_eq($$SELECT address, channel, scope, scope_ref FROM private.validate_consent(
    '{"address": " Someone@Example.COM ", "kind": "opt_in", "channel": "email", "scope": "vertical", "vertical": "solar"}', false)$$,
  $$VALUES ('someone@example.com', 'email', 'vertical', 'solar')$$, 'an email is trimmed and lower-cased; a vertical scope');
SELECT results_eq($$SELECT scope, scope_ref FROM private.validate_consent(
    '{"address": "+14155550100", "kind": "opt_out", "scope": "sender", "sender": "+15005550006"}', false)$$,
  $$VALUES ('sender', '+15005550006')$$, 'a sender scope names the sender');
SELECT is(ARRAY[pg_temp.code(NULL), pg_temp.code('[]'), pg_temp.code('{"address": "+14155550100", "kind": "opt_out", "x": 1}'),
                pg_temp.code('{"kind": "opt_out"}'), pg_temp.code('{"address": "(415) 555-0100", "kind": "opt_out"}'),
                pg_temp.code('{"address": 14155550100, "kind": "opt_out"}'), pg_temp.code('{"address": "+14155550100"}'),
                pg_temp.code('{"address": "+14155550100", "kind": "unsubscribe"}')],
  ARRAY['422 invalid_request', '422 invalid_request', '422 unknown_field', '422 invalid_address', '422 invalid_address',
        '422 invalid_address', '422 invalid_kind', '422 invalid_kind'],
  'not an object, unknown fields, bad or missing address (E.164 or email only), bad kind');
SELECT is(ARRAY[pg_temp.code('{"address": "+14155550100", "kind": "opt_out", "channel": "fax"}'),
                pg_temp.code('{"address": "+14155550100", "kind": "opt_out", "scope": "planet"}'),
                pg_temp.code('{"address": "+14155550100", "kind": "opt_out", "scope": "global"}'),
                pg_temp.code('{"address": "+14155550100", "kind": "opt_out", "scope": "vertical"}'),
                pg_temp.code('{"address": "+14155550100", "kind": "opt_out", "scope": "vertical", "vertical": "Solar!"}'),
                pg_temp.code('{"address": "+14155550100", "kind": "opt_out", "scope": "sender", "sender": "me"}'),
                pg_temp.code('{"address": "+14155550100", "kind": "opt_out", "vertical": "solar"}'),
                pg_temp.code('{"address": "+14155550100", "kind": "opt_out", "source": "operator"}'),
                pg_temp.code('{"address": "+14155550100", "kind": "opt_out", "source": "rumour"}'),
                pg_temp.code('{"address": "+14155550100", "kind": "opt_out", "evidence": "yes"}'),
                pg_temp.code('{"address": "+14155550100", "kind": "opt_out", "occurred_at": "yesterday-ish"}'),
                pg_temp.code(jsonb_build_object('address', '+14155550100', 'kind', 'opt_out', 'occurred_at', now() + interval '1 hour'))],
  ARRAY['422 invalid_channel', '422 invalid_scope', '422 global_scope_forbidden', '422 invalid_vertical', '422 invalid_vertical',
        '422 invalid_sender', '422 unexpected_scope_ref', '422 invalid_source', '422 invalid_source', '422 invalid_evidence',
        '422 invalid_occurred_at', '422 invalid_occurred_at'],
  'channel, scope (global is for operators), vertical, sender, source, evidence, occurred_at');
SELECT is(ARRAY[pg_temp.code('{"address": "+14155550100", "kind": "opt_out", "scope": "global"}', true),
                pg_temp.code('{"address": "+14155550100", "kind": "opt_out", "source": "operator"}', true)],
  ARRAY['valid', 'valid'], 'operators may record global scope and source operator');

-- Recording: per-item results in order, the valid items stored, one audit row.
SELECT pg_temp.counts() AS before \gset
SELECT max(id) AS last_audit FROM app.audit_log \gset
SELECT pg_temp.consent(:'t', '[
  {"address": "+14155550100", "kind": "opt_out", "channel": "sms", "source": "keyword", "evidence": {"body": "STOP"},
   "occurred_at": "2026-01-02T03:04:05Z"},
  {"address": "nope", "kind": "opt_out"},
  {"address": "someone@example.com", "kind": "opt_in", "channel": "email"}]') AS r \gset
SELECT is((SELECT array_agg((x ->> 'status')::int ORDER BY (x ->> 'index')::int) FROM jsonb_array_elements(:'r'::jsonb) x),
  ARRAY[201, 422, 201], 'one result per item, in order');
SELECT is(:'r'::jsonb -> 1 -> 'problem' ->> 'code', 'invalid_address', 'the bad item carries its problem');
SELECT results_eq($$SELECT tenant_id, address, address_hash = private.address_hash(address), channel, kind, scope,
                           source, evidence, occurred_at, api_key_id
                      FROM app.consent_events ORDER BY id$$,
  format($$VALUES (%L::uuid, '+14155550100', true, 'sms', 'opt_out', 'tenant', 'keyword', '{"body": "STOP"}'::jsonb,
                   '2026-01-02T03:04:05Z'::timestamptz, NULL::uuid),
                  (%L::uuid, 'someone@example.com', true, 'email', 'opt_in', 'tenant', 'api', '{}'::jsonb, now(), NULL::uuid)$$,
         :'t', :'t'),
  'the two valid events are stored as given, keyed by their address hash');
SELECT is(:'r'::jsonb -> 0 -> 'event',
  (SELECT private.consent_event_json(e) FROM app.consent_events e WHERE e.address = '+14155550100'),
  'each answer is its stored event');
SELECT is((SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(:'r'::jsonb -> 0 -> 'event') k),
  ARRAY['address', 'channel', 'evidence', 'id', 'kind', 'occurred_at', 'recorded_at', 'scope', 'sender', 'source', 'vertical'],
  'an event as the API shows it: no tenant, key or hash');
SELECT results_eq(format('SELECT action, details FROM app.audit_log WHERE id > %s', :last_audit),
  $$VALUES ('consent.record', '{"recorded": 2, "refused": 1}'::jsonb)$$, 'one audit row counts the call');
SELECT is((SELECT count(*)::int FROM app.consent_state), 2, 'two consent cells');

-- Global events: only with no tenant (the operator's call), which forces scope global.
SELECT is(pg_temp.consent(NULL, '[{"address": "+14155550199", "kind": "opt_out"}]') -> 0 -> 'event' ->> 'scope', 'global',
  'an operator''s event is global');
SELECT is((SELECT tenant_id FROM app.consent_events WHERE address = '+14155550199'), NULL, 'with no tenant');
SELECT is(pg_temp.consent(:'t', '[{"address": "+14155550199", "kind": "opt_out", "scope": "global"}]') -> 0 -> 'problem' ->> 'code',
  'global_scope_forbidden', 'a tenant cannot record global scope');

-- A batch of 1000 in one call.
SELECT jsonb_agg(jsonb_build_object('address', '+1415555' || lpad(i::text, 4, '0'), 'kind', 'opt_out', 'channel', 'sms'))
  AS bulk FROM generate_series(1000, 1999) i \gset
SELECT is((SELECT count(*)::int FROM jsonb_array_elements(pg_temp.consent(:'t', :'bulk')) x WHERE (x ->> 'status')::int = 201),
  1000, '1000 events in one call');
SELECT is((SELECT count(*)::int FROM app.consent_events WHERE tenant_id = :'t'), 1002, 'all stored');

-- The ledger is append-only, for its owner too.
SELECT throws_ok($$UPDATE app.consent_events SET kind = 'opt_in'$$, 'HM405', NULL, 'UPDATE consent_events: HM405');
SELECT throws_ok($$DELETE FROM app.consent_events$$, 'HM405', NULL, 'DELETE consent_events: HM405');
SELECT throws_ok($$TRUNCATE app.consent_events$$, 'HM405', NULL, 'TRUNCATE consent_events: HM405');
SELECT is(pg_temp.problem(format('DELETE FROM %s', (SELECT tableoid::regclass FROM app.consent_events LIMIT 1))),
  'HM405 append_only', 'straight on a partition too');
SELECT ok(NOT has_table_privilege('hermes_api', 'app.consent_events', 'INSERT, UPDATE, DELETE, TRUNCATE')
          AND NOT has_table_privilege('hermes_worker', 'app.consent_events', 'INSERT, UPDATE, DELETE, TRUNCATE')
          AND NOT has_table_privilege('hermes_integrator', 'app.consent_events', 'INSERT, UPDATE, DELETE, TRUNCATE'),
  'no application role may write the ledger but through the functions');
SELECT ok(NOT has_function_privilege('hermes_api', 'private.record_consents(uuid, uuid, jsonb)', 'EXECUTE'),
  'the tenant-id implementation is not executable by the API role');

-- The lock: while another transaction holds an address's lock, recording waits.
SELECT set_config('hermes_test.t', :'t', true) IS NOT NULL AS s \gset
SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'dblink') AS have_dblink \gset
\if :have_dblink
CREATE EXTENSION dblink SCHEMA tap;
SELECT tap.dblink_connect('other', format('host=%s port=%s dbname=%s user=%s',
         coalesce(host(inet_server_addr()), split_part(current_setting('unix_socket_directories'), ',', 1)),
         current_setting('port'), current_database(), current_user)) AS connected \gset
SELECT tap.dblink_exec('other', 'BEGIN') AS b \gset
SELECT x AS locked FROM tap.dblink('other',
  $$SELECT private.lock_addresses(ARRAY[private.address_hash('+14155550177')])::text$$) AS l(x text) \gset
SET LOCAL lock_timeout = '200ms';
SELECT is(pg_temp.problem($$SELECT pg_temp.opt(current_setting('hermes_test.t')::uuid, 'opt_out', '+14155550177')$$),
  '55P03 ', 'an opt-out of an address another transaction has locked waits for it (here: until lock_timeout)');
SELECT is(pg_temp.opt(:'t', 'opt_out', '+14155550178') ->> 'status', '201', 'another address does not wait');
SELECT tap.dblink_exec('other', 'ROLLBACK') AS rb \gset
SELECT tap.dblink_disconnect('other') AS disconnected \gset
RESET lock_timeout;
\else
SELECT skip('dblink is not available: no second session', 2);
\endif
SELECT is(pg_temp.opt(:'t', 'opt_out', '+14155550177') ->> 'status', '201', 'once the lock is free it goes through');
SELECT is((SELECT count(*)::int FROM app.consent_events WHERE address = '+14155550177'), 1,
  'the attempt that timed out left nothing behind');

SELECT * FROM finish();
ROLLBACK;
