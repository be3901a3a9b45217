-- Row-level security of the read API (PostgREST): one tenant per request, set by
-- private.check_request() in hermes.tenant_id; hermes_anon and a request without a
-- tenant see nothing; the PostgREST roles cannot write.
BEGIN;
\ir helpers.psql
-- pgTAP's set functions build temporary tables, and client roles have no TEMP (see
-- private.configure_database): grant it to the switched roles for this file only.
SELECT format('GRANT TEMPORARY ON DATABASE %I TO hermes_integrator, hermes_anon', current_database()) AS grant_temp \gset
:grant_temp;
SELECT plan(41);

SELECT r -> 'tenant' ->> 'id' AS tenant_a, r -> 'api_key' ->> 'token' AS token_a,
       r -> 'api_key' ->> 'id' AS key_a
  FROM pg_temp.new_tenant('Tenant A') r \gset
SELECT r -> 'tenant' ->> 'id' AS tenant_b, r -> 'api_key' ->> 'token' AS token_b
  FROM pg_temp.new_tenant('Tenant B') r \gset
SELECT pg_temp.new_message(:'tenant_a', 'a1') AS msg_a1 \gset
SELECT pg_temp.new_message(:'tenant_a', 'a2') AS msg_a2 \gset
SELECT pg_temp.new_message(:'tenant_b', 'b1') AS msg_b1 \gset
-- A key of tenant A without the read scope, and one that gets revoked.
SELECT pg_temp.new_key(:'tenant_a', 'writer', ARRAY['messages:write']) ->> 'token' AS token_writer \gset
SELECT k ->> 'token' AS token_revoked, k ->> 'id' AS key_revoked
  FROM pg_temp.new_key(:'tenant_a', 'old', ARRAY['read']) k \gset
UPDATE app.api_keys SET revoked_at = now() WHERE id = :'key_revoked';  -- revoked
SELECT private.uuid7() AS new_id \gset

-- The views and tables hold rows of both tenants (checked as the superuser).
SELECT is((SELECT count(*)::int FROM api.messages), 3, 'superuser: api.messages has all 3 messages');

-- No tenant set at all (nothing in this transaction has set hermes.tenant_id yet).
SET LOCAL ROLE hermes_integrator;
SELECT is(current_setting('hermes.tenant_id', true), NULL, 'hermes.tenant_id is not set');
SELECT is_empty('SELECT * FROM api.messages', 'integrator without tenant: no messages');
SELECT is_empty('SELECT * FROM api.message_events', 'integrator without tenant: no events');
SELECT is_empty('SELECT * FROM app.messages', 'integrator without tenant: no rows in app.messages either');

-- Tenant A.
SELECT set_config('hermes.tenant_id', :'tenant_a', true) IS NOT NULL AS set_a \gset
SELECT set_eq('SELECT id FROM api.messages', ARRAY[:'msg_a1', :'msg_a2']::uuid[],
  'tenant A sees exactly its two messages in api.messages');
SELECT set_eq('SELECT DISTINCT message_id FROM api.message_events', ARRAY[:'msg_a1', :'msg_a2']::uuid[],
  'tenant A sees the events of its messages only');
SELECT is((SELECT count(*)::int FROM api.message_events), 2, 'tenant A sees its two accepted events');
SELECT set_eq('SELECT id FROM app.messages', ARRAY[:'msg_a1', :'msg_a2']::uuid[],
  'tenant A: app.messages is filtered the same way');
SELECT is_empty(format('SELECT * FROM api.messages WHERE id = %L', :'msg_b1'),
  'tenant A cannot fetch B''s message by id');

-- Tenant B.
SELECT set_config('hermes.tenant_id', :'tenant_b', true) IS NOT NULL AS set_b \gset
SELECT set_eq('SELECT id FROM api.messages', ARRAY[:'msg_b1']::uuid[],
  'tenant B sees exactly its message');
SELECT set_eq('SELECT DISTINCT message_id FROM api.message_events', ARRAY[:'msg_b1']::uuid[],
  'tenant B sees the events of its message only');

-- Empty tenant (what check_request sets for an anonymous request).
SELECT set_config('hermes.tenant_id', '', true) IS NOT NULL AS set_empty \gset
SELECT is_empty('SELECT * FROM api.messages', 'integrator with empty tenant: no messages');
SELECT is_empty('SELECT * FROM api.message_events', 'integrator with empty tenant: no events');

-- The PostgREST roles cannot write, through the views or the tables.
SELECT set_config('hermes.tenant_id', :'tenant_a', true) IS NOT NULL AS set_a2 \gset
SELECT throws_ok(format($$INSERT INTO api.messages (id, created_at, channel, status, "to", "from", body)
  VALUES (%L, now(), 'sms', 'delivered', '+14155550123', '+15005550006', 'x')$$, :'new_id'),
  '42501', NULL, 'integrator cannot INSERT into api.messages');
SELECT throws_ok($$UPDATE api.messages SET status = 'delivered'$$, '42501', NULL,
  'integrator cannot UPDATE api.messages');
SELECT throws_ok($$DELETE FROM api.messages$$, '42501', NULL, 'integrator cannot DELETE from api.messages');
SELECT throws_ok(format($$INSERT INTO app.messages (id, created_at, tenant_id, to_address, from_address, body)
  VALUES (%L, now(), %L, '+14155550123', '+15005550006', 'x')$$, :'new_id', :'tenant_a'),
  '42501', NULL, 'integrator cannot INSERT into app.messages');
SELECT throws_ok($$UPDATE app.messages SET status = 'delivered'$$, '42501', NULL,
  'integrator cannot UPDATE app.messages');
SELECT throws_ok($$UPDATE api.message_events SET status = 'delivered'$$, '42501', NULL,
  'integrator cannot UPDATE api.message_events');
SELECT set_eq('SELECT DISTINCT message_id FROM api.message_attempts', ARRAY[:'msg_a1', :'msg_a2']::uuid[],
  'tenant A sees the attempts (steps) of its messages only');
SELECT throws_ok($$UPDATE api.message_attempts SET status = 'delivered'$$, '42501', NULL,
  'integrator cannot UPDATE api.message_attempts');
SELECT throws_ok('SELECT * FROM app.api_keys', '42501', NULL, 'integrator cannot read app.api_keys');
SELECT throws_ok('SELECT * FROM app.idempotency_keys', '42501', NULL,
  'integrator cannot read app.idempotency_keys');
SELECT throws_ok('SELECT * FROM private.settings', '42501', NULL,
  'integrator cannot read private.settings (the JWT secret)');
SELECT throws_ok('SELECT private.uuid7()', '42501', NULL,
  'integrator cannot execute private helpers other than check_request');
SELECT throws_ok(format('SELECT app.get_message(%L, %L)', :'token_writer', :'msg_a1'), '42501', NULL,
  'integrator cannot execute the command functions');

-- hermes_anon sees nothing, even with a tenant set: no policy names it.
RESET ROLE;
SET LOCAL ROLE hermes_anon;
SELECT is(current_setting('hermes.tenant_id', true), :'tenant_a', 'anon: hermes.tenant_id is A');
SELECT is_empty('SELECT * FROM api.messages', 'anon sees no messages');
SELECT is_empty('SELECT * FROM api.message_events', 'anon sees no events');
SELECT throws_ok($$UPDATE api.messages SET status = 'delivered'$$, '42501', NULL,
  'anon cannot UPDATE api.messages');

-- private.check_request(): PostgREST's pre-request, as it runs it -------------------
RESET ROLE;
SELECT set_config('request.headers', json_build_object('authorization', 'Bearer ' || :'token_a')::text, true)
  IS NOT NULL AS h \gset
SET LOCAL ROLE hermes_integrator;
SELECT lives_ok('SELECT private.check_request()', 'a valid key passes check_request');
SELECT is(current_setting('hermes.tenant_id'), :'tenant_a', 'a valid key sets hermes.tenant_id to its tenant');
SELECT is(current_setting('hermes.api_key_id'), :'key_a', 'and hermes.api_key_id to the key');
SELECT set_eq('SELECT id FROM api.messages', ARRAY[:'msg_a1', :'msg_a2']::uuid[],
  'after check_request with A''s key, api.messages shows A''s messages');

RESET ROLE;
SELECT set_config('request.headers', '{"accept": "application/json"}', true) IS NOT NULL AS h \gset
SET LOCAL ROLE hermes_integrator;
SELECT lives_ok('SELECT private.check_request()', 'no Authorization header passes check_request');
SELECT is(current_setting('hermes.tenant_id'), '', 'no header: hermes.tenant_id is empty');
SELECT is_empty('SELECT * FROM api.messages', 'no header: no rows');

RESET ROLE;
SELECT set_config('request.headers', json_build_object('authorization', 'Bearer ' || :'token_revoked')::text, true)
  IS NOT NULL AS h \gset
SET LOCAL ROLE hermes_integrator;
SELECT throws_ok('SELECT private.check_request()', 'PT401', 'Invalid, revoked or expired API key',
  'a revoked key: PT401');

RESET ROLE;
SELECT set_config('request.headers', json_build_object('authorization', 'Bearer ' || :'token_writer')::text, true)
  IS NOT NULL AS h \gset
SET LOCAL ROLE hermes_integrator;
SELECT throws_ok('SELECT private.check_request()', 'PT403', 'This API key may not read',
  'a key without the read scope: PT403');

RESET ROLE;
UPDATE app.tenants SET status = 'suspended' WHERE id = :'tenant_b';
SELECT set_config('request.headers', json_build_object('authorization', 'Bearer ' || :'token_b')::text, true)
  IS NOT NULL AS h \gset
SET LOCAL ROLE hermes_integrator;
SELECT throws_ok('SELECT private.check_request()', 'PT403', 'Tenant is suspended',
  'a key of a suspended tenant: PT403');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
