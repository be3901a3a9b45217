-- app.create_tenant (a platform key with the admin scope) and private.create_tenant (its
-- implementation, the operator's bootstrap): a tenant and its first API key.
BEGIN;
\ir ../../helpers.psql
SELECT plan(31);

SELECT k ->> 'id' AS admin, k ->> 'token' AS admin_token FROM app.create_admin_key('ops') k \gset
SELECT pg_temp.counts() AS before \gset
SELECT app.create_tenant(:'admin_token', '  Acme  ', 'prod', '+1 (415) 555-0906') AS r \gset
SELECT (:'r'::jsonb) -> 'tenant' ->> 'id' AS t, (:'r'::jsonb) -> 'api_key' ->> 'id' AS k \gset

SELECT is(((:'r'::jsonb) -> 'tenant') - 'id' - 'created_at',
  '{"name": "Acme", "environment": "prod", "status": "active", "default_sms_from": "+14155550906",
    "default_email_from": null, "default_whatsapp_from": null}'::jsonb,
  'the tenant: trimmed name, environment, active, normalised default sender');
SELECT results_eq(format('SELECT name, environment::text, status, default_sms_from, created_at FROM app.tenants WHERE id = %L', :'t'),
  $$VALUES ('Acme', 'prod', 'active', '+14155550906', now())$$, 'stored as returned');
-- Its default sender, free until now, is registered to it (app.senders).
SELECT results_eq(format($$SELECT channel, kind, address, tenant_id, shared, number_type, status FROM app.senders
                            WHERE address = '+14155550906'$$),
  format($$VALUES ('sms', 'address', '+14155550906', %L::uuid, false, 'long_code', 'active')$$, :'t'),
  'its default sender is registered to it');
SELECT is((:'r'::jsonb) -> 'api_key' -> 'scopes', '["compliance:write", "imports:write", "keys:write", "messages:write", "providers:write", "read"]'::jsonb,
  'its first key has messages:write, keys:write, read and compliance:write');
SELECT is((:'r'::jsonb) -> 'api_key' ->> 'name', 'default', 'named default');
SELECT ok((:'r'::jsonb) -> 'api_key' ->> 'prefix' ~ '^hk_prod_[0-9a-f]{12}$', 'with the environment in its prefix');
SELECT is((private.authorize((:'r'::jsonb) -> 'api_key' ->> 'token', 'messages:write')).tenant_id::text, :'t',
  'the token authenticates for the tenant');
SELECT is((pg_temp.counts() ->> 'tenants')::int - (:'before'::jsonb ->> 'tenants')::int, 1, 'one tenant');
SELECT is((pg_temp.counts() ->> 'api_keys')::int - (:'before'::jsonb ->> 'api_keys')::int, 1, 'one key');
SELECT results_eq($$SELECT tenant_id, api_key_id, action, target_id FROM app.audit_log
                     WHERE action IN ('tenant.create', 'api_key.create') AND api_key_id IS NOT NULL ORDER BY id$$,
  format($$VALUES (NULL::uuid, %L::uuid, 'tenant.create', %L), (%L::uuid, %L::uuid, 'api_key.create', %L)$$,
         :'admin', :'t', :'t', :'admin', :'k'),
  'audited twice: tenant.create (platform) and api_key.create (tenant), by the acting key');
SELECT is(private.create_tenant(NULL, 'Defaults') -> 'tenant' -> 'environment', '"sandbox"'::jsonb,
  'the default environment is sandbox');
SELECT is(private.create_tenant(NULL, 'No sender', 'test') -> 'tenant' -> 'default_sms_from', 'null'::jsonb,
  'a default sender is optional');

SELECT pg_temp.counts() AS before2 \gset
SELECT is(pg_temp.problem(format($$SELECT app.create_tenant(%L, 'X')$$, (:'r'::jsonb) -> 'api_key' ->> 'token')),
  'HM403 insufficient_scope', 'a tenant key (no admin scope) cannot create tenants: HM403');
SELECT is(pg_temp.problem($$SELECT app.create_tenant('not-a-key', 'X')$$), 'HM401 invalid_api_key',
  'an unknown token: HM401 invalid_api_key');
SELECT is(pg_temp.problem($$SELECT app.create_tenant(NULL, 'X')$$), 'HM401 invalid_api_key',
  'no token: HM401 (the bootstrap without a key is private.create_tenant, the owner''s)');
UPDATE app.api_keys SET revoked_at = now() WHERE id = :'admin';
SELECT is(pg_temp.problem(format($$SELECT app.create_tenant(%L, 'X')$$, :'admin_token')), 'HM401 invalid_api_key',
  'a revoked admin key: HM401');
SELECT is(pg_temp.problem($$SELECT private.create_tenant(NULL, NULL)$$), 'HM422 invalid_name', 'no name: HM422 invalid_name');
SELECT is(pg_temp.problem($$SELECT private.create_tenant(NULL, '   ')$$), 'HM422 invalid_name', 'a blank name: invalid_name');
SELECT is(pg_temp.problem($$SELECT private.create_tenant(NULL, repeat('n', 201))$$), 'HM422 invalid_name',
  'a 201-character name: invalid_name');
SELECT is(pg_temp.problem($$SELECT private.create_tenant(NULL, 'X', 'staging')$$), 'HM422 invalid_environment',
  'an unknown environment: HM422 invalid_environment');
SELECT is(pg_temp.problem($$SELECT private.create_tenant(NULL, 'X', NULL)$$), 'HM422 invalid_environment',
  'a NULL environment: invalid_environment');
SELECT is(pg_temp.problem($$SELECT private.create_tenant(NULL, 'X', 'test', 'HERMES')$$), 'HM422 invalid_from',
  'a default sender that is not a phone number: HM422 invalid_from');
-- A default sender another tenant holds, or a shared simulator number for a production
-- tenant: HM409 sender_taken, and no tenant.
SELECT is(pg_temp.problem($$SELECT private.create_tenant(NULL, 'Copycat', 'test', '+14155550906')$$),
  'HM409 sender_taken', 'another tenant''s number as a default sender: HM409 sender_taken');
SELECT is(pg_temp.problem($$SELECT private.create_tenant(NULL, 'Prod on sim', 'prod', '+15005550006')$$),
  'HM409 sender_taken', 'a production tenant on a shared simulator number: HM409 sender_taken');
SELECT is(pg_temp.counts(), :'before2'::jsonb, 'the refusals wrote nothing');
SELECT is((SELECT count(*)::int FROM app.senders WHERE tenant_id IS NOT NULL), 1, 'and registered nothing');
-- A sandbox tenant on the shared number uses it as it is: nothing registered.
SELECT is((SELECT count(*)::int FROM app.senders WHERE address = '+15005550006'), 1,
  'a sandbox or test tenant on a shared number registers nothing (the shared row is the one row)');

-- Default senders of the other channels.
SELECT k ->> 'token' AS admin2 FROM app.create_admin_key('ops2') k \gset
SELECT set_config('t.admin', :'admin2', true) IS NOT NULL AS cfg2 \gset
SELECT app.create_tenant(:'admin2', 'Mailer', 'sandbox', NULL, ' Mailer <hi@mailer.example> ', '+1 415 555 0100') AS r2 \gset
SELECT is(((:'r2'::jsonb) -> 'tenant') -> 'default_email_from', '"Mailer <hi@mailer.example>"',
  'a default email sender, trimmed');
SELECT is(((:'r2'::jsonb) -> 'tenant') -> 'default_whatsapp_from', '"+14155550100"', 'a default WhatsApp number, normalised');
SELECT results_eq(format($$SELECT channel, address FROM app.senders WHERE tenant_id = %L ORDER BY channel$$,
                         (:'r2'::jsonb) -> 'tenant' ->> 'id'),
  $$VALUES ('email', 'hi@mailer.example'), ('whatsapp', '+14155550100')$$,
  'its email address (without the display name) and WhatsApp number are registered to it');
SELECT throws_ok($$SELECT app.create_tenant(current_setting('t.admin'), 'Bad', 'sandbox', NULL, 'not an address')$$,
  'HM422', NULL, 'an email sender that is no address: HM422');
SELECT * FROM finish();
ROLLBACK;
