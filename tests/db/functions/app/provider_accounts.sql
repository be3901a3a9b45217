-- app.set_provider_account, app.disable_provider_account, app.provider_account_credentials,
-- app.attempt_provider_account: a tenant's own provider accounts, sealed credentials
-- stored and never shown, the steps that go through them (not a sandbox tenant's).
BEGIN;
\ir ../../helpers.psql
SELECT plan(18);

SELECT private.create_tenant(NULL, 'Accounts Co', 'prod', '+14155550907') AS r \gset
SELECT (:'r'::jsonb) -> 'tenant' ->> 'id' AS t, (:'r'::jsonb) -> 'api_key' ->> 'token' AS token \gset
SELECT private.create_tenant(NULL, 'Sandbox Co', 'sandbox', '+15005550006') AS rs \gset
SELECT (:'rs'::jsonb) -> 'tenant' ->> 'id' AS ts, (:'rs'::jsonb) -> 'api_key' ->> 'token' AS tokens \gset
SELECT pg_temp.set_policy(:'t', '{"default_category": "transactional"}');
SELECT pg_temp.set_policy(:'ts', '{"default_category": "transactional"}');
SELECT gen_random_uuid() AS acc1, gen_random_uuid() AS acc2, gen_random_uuid() AS accs \gset
SELECT '\x' || repeat('ab', 40) AS blob \gset

SELECT is(app.set_provider_account(:'token', :'acc1', 'twilio', 'Main', :'blob'::bytea, 'k1', :'blob'::bytea, 'k1') - 'created_at',
  jsonb_build_object('id', :'acc1'::uuid, 'provider', 'twilio', 'name', 'Main', 'replaces', NULL),
  'stored: the answer names the account, never its credentials');
SELECT is(ARRAY[pg_temp.problem(format($$SELECT app.set_provider_account(%L, gen_random_uuid(), 'nexmo', 'x', '\x%s'::bytea, 'k1', '\x%2$s'::bytea, 'k1')$$, :'token', repeat('ab', 40))),
                pg_temp.problem(format($$SELECT app.set_provider_account(%L, gen_random_uuid(), 'twilio', '', '\x%s'::bytea, 'k1', '\x%2$s'::bytea, 'k1')$$, :'token', repeat('ab', 40))),
                pg_temp.problem(format($$SELECT app.set_provider_account(%L, gen_random_uuid(), 'twilio', 'x', '\xab'::bytea, 'k1', '\x%s'::bytea, 'k1')$$, :'token', repeat('ab', 40))),
                pg_temp.problem(format($$SELECT app.set_provider_account(%L, gen_random_uuid(), 'twilio', 'x', '\x%s'::bytea, 'k 1', '\x%2$s'::bytea, 'k1')$$, :'token', repeat('ab', 40)))],
  ARRAY['HM422 unknown_provider', 'HM422 invalid_name', 'HM422 invalid_credentials', 'HM422 invalid_credentials'],
  'unknown provider, bad name, too short a ciphertext, a bad key id');
SELECT pg_temp.new_key(:'t', 'reader', ARRAY['read', 'messages:write']) ->> 'token' AS reader \gset
SELECT is(pg_temp.problem(format($$SELECT app.set_provider_account(%L, gen_random_uuid(), 'twilio', 'x', '\x%s'::bytea, 'k1', '\x%2$s'::bytea, 'k1')$$, :'reader', repeat('ab', 40))),
  'HM403 insufficient_scope', 'a key without providers:write: HM403 insufficient_scope');
-- keys:write is not enough: an account receives every later message's content.
SELECT pg_temp.new_key(:'t', 'key admin', ARRAY['keys:write', 'messages:write', 'read']) ->> 'token' AS keyadmin \gset
SELECT is(ARRAY[pg_temp.problem(format($$SELECT app.set_provider_account(%L, gen_random_uuid(), 'twilio', 'x', '\x%s'::bytea, 'k1', '\x%2$s'::bytea, 'k1')$$, :'keyadmin', repeat('ab', 40))),
                pg_temp.problem(format($$SELECT app.disable_provider_account(%L, %L)$$, :'keyadmin', :'acc1'))],
  ARRAY['HM403 insufficient_scope', 'HM403 insufficient_scope'],
  'a keys:write key can neither set nor disable provider accounts: they take providers:write');
SELECT ok((:'r'::jsonb) -> 'api_key' -> 'scopes' ? 'providers:write', 'a tenant''s first key has providers:write');

-- A step goes through the tenant's account for its provider; a sandbox tenant's never.
SELECT (private.submit_message(:'t', NULL, '{"to": "+14155550123", "body": "own account"}') -> 'message' ->> 'id') AS m1 \gset
SELECT is((SELECT provider_account_id FROM app.message_attempts WHERE message_id = :'m1'), :'acc1'::uuid,
  'a step of a prod tenant goes through its account');
SELECT is(app.claim_attempt(pg_temp.attempt_of(:'m1')) ->> 'provider_account_id', :'acc1',
  'and the claim says so (and nothing of the credentials)');
SELECT ok(NOT (app.claim_attempt(pg_temp.attempt_of(:'m1')) ? 'credentials'), 'no credentials in a claim');
SELECT is(app.attempt_provider_account(pg_temp.attempt_of(:'m1')), :'acc1'::uuid, 'the attempt''s account (callbacks)');
SELECT app.set_provider_account(:'tokens', :'accs', 'twilio', 'Sandbox', :'blob'::bytea, 'k1', :'blob'::bytea, 'k1') IS NOT NULL AS s \gset
SELECT (private.submit_message(:'ts', NULL, '{"to": "+14155550123", "body": "sandbox"}') -> 'message' ->> 'id') AS ms \gset
SELECT is((SELECT provider_account_id FROM app.message_attempts WHERE message_id = :'ms'), NULL,
  'a sandbox tenant''s step never goes through an account of its own (simulators)');
SELECT is(app.claim_attempt(pg_temp.attempt_of(:'ms')) ->> 'environment', 'sandbox', 'the claim names the environment');

-- Replacing and disabling.
SELECT is(app.set_provider_account(:'token', :'acc2', 'twilio', 'Second', :'blob'::bytea, 'k2', :'blob'::bytea, 'k2') ->> 'replaces', :'acc1',
  'a new account for the provider replaces the active one');
SELECT results_eq(format($$SELECT id, disabled_at IS NULL FROM app.provider_accounts WHERE tenant_id = %L ORDER BY created_at, disabled_at NULLS LAST$$, :'t'),
  format($$VALUES (%L::uuid, false), (%L::uuid, true)$$, :'acc1', :'acc2'), 'the old one disabled, the new one active');
SELECT is(app.disable_provider_account(:'token', :'acc2') ->> 'id', :'acc2', 'disabled');
SELECT is(pg_temp.problem(format($$SELECT app.disable_provider_account(%L, %L)$$, :'tokens', :'acc1')),
  'HM404 account_not_found', 'another tenant''s account is not found');
SELECT is((SELECT array_agg(key_id ORDER BY key_id) FROM app.provider_account_credentials(ARRAY[:'acc1', :'acc2']::uuid[])),
  ARRAY['k1', 'k2'], 'the sealed credentials of disabled accounts still open (steps claimed before)');

-- The read API: the accounts, not their credentials.
SELECT format('GRANT TEMPORARY ON DATABASE %I TO hermes_integrator', current_database()) AS g \gset
:g;
SET LOCAL ROLE hermes_integrator;
SELECT set_config('hermes.tenant_id', :'t', true) IS NOT NULL AS set_t \gset
SELECT is((SELECT count(*)::int FROM api.provider_accounts), 2, 'a tenant reads its accounts');
SELECT throws_ok('SELECT credentials FROM app.provider_accounts', '42501', NULL,
  'but never the credentials column, even straight from the table');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
