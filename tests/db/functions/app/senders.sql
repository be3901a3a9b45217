-- The sender registry (db/functions/app/senders.sql): app.register_sender,
-- app.update_sender, app.list_senders (admin scope) and their private forms; the rule
-- private.senders_allowed (intake and claim ask it); private.inbound_tenant (whose an
-- inbound message is); api.senders under row-level security.
BEGIN;
\ir ../../helpers.psql
SELECT format('GRANT TEMPORARY ON DATABASE %I TO hermes_integrator, hermes_anon', current_database()) AS grant_temp \gset
:grant_temp;
SELECT plan(48);

SELECT k ->> 'id' AS admin, k ->> 'token' AS admin_token FROM app.create_admin_key('ops') k \gset
SELECT r -> 'tenant' ->> 'id' AS ta, r -> 'api_key' ->> 'token' AS token_a FROM pg_temp.new_tenant('A Co') r \gset
SELECT r -> 'tenant' ->> 'id' AS tp, r -> 'api_key' ->> 'token' AS token_p
  FROM private.create_tenant(NULL, 'Prod Co', 'prod', '+14155550900') r \gset

-- The seeded rows: the simulators' numbers are shared; a production tenant's default is its own.
SELECT set_eq($$SELECT channel, kind, address FROM app.senders WHERE shared$$,
  $$VALUES ('sms', 'address', '+15005550006'), ('whatsapp', 'address', '+14155550170'), ('email', 'domain', 'hermes.example')$$,
  'the simulators'' numbers and the tests'' email domain are shared rows');
SELECT results_eq(format($$SELECT tenant_id, shared, number_type FROM app.senders WHERE address = '+14155550900'$$),
  format($$VALUES (%L::uuid, false, 'long_code')$$, :'tp'), 'a production tenant''s default is registered to it');

-- register ------------------------------------------------------------------------
SELECT app.register_sender(:'admin_token', jsonb_build_object('channel', 'sms', 'address', '+1 (415) 555-0901',
  'tenant_id', :'ta', 'time_zone', 'America/Los_Angeles')) AS s1 \gset
SELECT is((:'s1'::jsonb) - 'id' - 'created_at' - 'updated_at', jsonb_build_object(
    'channel', 'sms', 'kind', 'address', 'address', '+14155550901', 'tenant_id', :'ta'::uuid, 'shared', false,
    'provider_account_id', NULL, 'number_type', 'long_code', 'time_zone', 'America/Los_Angeles', 'status', 'active',
    'released_at', NULL),
  'registered: the number normalised, a long code by default, active');
SELECT is(private.register_sender(NULL, '{"channel": "sms", "address": "+18005550100"}') ->> 'number_type', 'toll_free',
  'a NANP toll-free number is toll_free by default (and may belong to no tenant yet)');
SELECT is(private.register_sender(NULL, jsonb_build_object('channel', 'email', 'address', 'Sales <Sales@A-Co.Example>',
                                                           'tenant_id', :'ta')) ->> 'address',
  'sales@a-co.example', 'an email sender: its address, lower-cased, without the display name');
SELECT is(private.register_sender(NULL, jsonb_build_object('channel', 'email', 'kind', 'domain', 'address', '@Mail.A-Co.example',
                                                           'tenant_id', :'ta')) ->> 'address',
  'mail.a-co.example', 'an email domain, lower-cased');
SELECT results_eq($$SELECT action, api_key_id FROM app.audit_log WHERE action = 'sender.register' AND target_id =
                      (SELECT id::text FROM app.senders WHERE address = '+14155550901')$$,
  format($$VALUES ('sender.register', %L::uuid)$$, :'admin'), 'audited, by the acting admin key');

SELECT pg_temp.counts() || jsonb_build_object('senders', (SELECT count(*) FROM app.senders)) AS before \gset
SELECT is(ARRAY[
    pg_temp.problem(format($$SELECT app.register_sender(%L, '{"channel": "sms", "address": "+14155550902"}')$$, :'token_a')),
    pg_temp.problem($$SELECT app.register_sender('nope', '{"channel": "sms", "address": "+14155550902"}')$$),
    pg_temp.problem($$SELECT private.register_sender(NULL, '{"channel": "fax", "address": "+14155550902"}')$$),
    pg_temp.problem($$SELECT private.register_sender(NULL, '{"channel": "sms", "address": "HERMES"}')$$),
    pg_temp.problem($$SELECT private.register_sender(NULL, '{"channel": "sms", "address": "4155550902"}')$$),
    pg_temp.problem($$SELECT private.register_sender(NULL, '{"channel": "email", "address": "not an address"}')$$),
    pg_temp.problem($$SELECT private.register_sender(NULL, '{"channel": "email", "kind": "domain", "address": "no domain"}')$$),
    pg_temp.problem($$SELECT private.register_sender(NULL, '{"channel": "sms", "kind": "domain", "address": "a.example"}')$$),
    pg_temp.problem($$SELECT private.register_sender(NULL, '{"channel": "sms", "address": "+14155550902", "number_type": "pigeon"}')$$),
    pg_temp.problem($$SELECT private.register_sender(NULL, '{"channel": "sms", "address": "+14155550902", "number_type": "alphanumeric"}')$$),
    pg_temp.problem($$SELECT private.register_sender(NULL, '{"channel": "email", "address": "a@b.example", "number_type": "long_code"}')$$),
    pg_temp.problem($$SELECT private.register_sender(NULL, '{"channel": "sms", "address": "+14155550902", "time_zone": "Mars/Olympus"}')$$),
    pg_temp.problem($$SELECT private.register_sender(NULL, '{"channel": "sms", "address": "+14155550902", "tenant_id": "00000000-0000-0000-0000-000000000000"}')$$),
    pg_temp.problem(format($$SELECT private.register_sender(NULL, '{"channel": "sms", "address": "+14155550902", "shared": true, "tenant_id": "%s"}')$$, :'ta')),
    pg_temp.problem(format($$SELECT private.register_sender(NULL, '{"channel": "sms", "address": "+14155550902", "tenant_id": "%s", "provider_account_id": "%s"}')$$, :'ta', gen_random_uuid())),
    pg_temp.problem($$SELECT private.register_sender(NULL, '{"channel": "sms", "address": "+14155550902", "colour": "red"}')$$),
    pg_temp.problem($$SELECT private.register_sender(NULL, '{"channel": "sms", "address": 14155550902}')$$),
    pg_temp.problem($$SELECT private.register_sender(NULL, '[]')$$)],
  ARRAY['HM403 insufficient_scope', 'HM401 invalid_api_key', 'HM422 invalid_channel', 'HM422 invalid_address',
        'HM422 invalid_address', 'HM422 invalid_address', 'HM422 invalid_address', 'HM422 invalid_kind',
        'HM422 invalid_number_type', 'HM422 invalid_number_type', 'HM422 invalid_number_type', 'HM422 invalid_time_zone',
        'HM422 unknown_tenant', 'HM422 conflicting_fields', 'HM422 invalid_provider_account', 'HM422 unknown_field',
        'HM422 invalid_field', 'HM422 invalid_request'],
  'every field is validated: scope, channel, address, kind, number type, time zone, tenant, shared, account, shape');
SELECT is(pg_temp.counts() || jsonb_build_object('senders', (SELECT count(*) FROM app.senders)), :'before'::jsonb,
  'the refusals wrote nothing');

-- One owner at a time.
SELECT is(ARRAY[
    pg_temp.problem(format($$SELECT private.register_sender(NULL, '{"channel": "sms", "address": "+14155550901", "tenant_id": "%s"}')$$, :'tp')),
    pg_temp.problem($$SELECT private.register_sender(NULL, '{"channel": "sms", "address": "+15005550006"}')$$),
    pg_temp.problem(format($$SELECT private.register_sender(NULL, '{"channel": "email", "address": "ceo@mail.a-co.example", "tenant_id": "%s"}')$$, :'tp')),
    pg_temp.problem(format($$SELECT private.register_sender(NULL, '{"channel": "email", "kind": "domain", "address": "a-co.example", "tenant_id": "%s"}')$$, :'tp'))],
  ARRAY['HM409 sender_taken', 'HM409 sender_taken', 'HM409 sender_taken', 'HM409 sender_taken'],
  'a number another tenant has, a shared one, an address at another''s domain, a domain with another''s addresses: HM409');
SELECT is(private.register_sender(NULL, jsonb_build_object('channel', 'email', 'address', 'ceo@mail.a-co.example',
                                                           'tenant_id', :'ta')) ->> 'tenant_id', :'ta',
  'the domain''s owner may register an address at it too');
SELECT is(private.register_sender(NULL, '{"channel": "whatsapp", "address": "+14155550901"}') ->> 'channel', 'whatsapp',
  'the same number on another channel is another sender');

-- the rule ---------------------------------------------------------------------------
CREATE FUNCTION pg_temp.allowed(p_tenant uuid, p_channel text, p_from text) RETURNS boolean
LANGUAGE sql AS $$
  SELECT a.allowed FROM private.senders_allowed(ARRAY[ROW(1, p_tenant, p_channel, NULL, p_from, NULL, NULL, NULL)::private.send_candidate]) a
$$;
SELECT is(ARRAY[
    pg_temp.allowed(:'ta', 'sms', '+14155550901'),
    pg_temp.allowed(:'ta', 'sms', '+15005550006'),
    pg_temp.allowed(:'ta', 'whatsapp', '+14155550170'),
    pg_temp.allowed(:'ta', 'email', 'Tests <anyone@HERMES.example>'),
    pg_temp.allowed(:'ta', 'email', 'Sales <SALES@a-co.example>'),
    pg_temp.allowed(:'ta', 'email', 'bob@mail.a-co.example'),
    pg_temp.allowed(:'ta', 'push', NULL),
    pg_temp.allowed(:'ta', 'whatsapp', NULL)],
  ARRAY[true, true, true, true, true, true, true, true],
  'allowed: its own number; the shared ones (a test tenant); its address (any case, display name); any address at its domain; no sender');
SELECT is(ARRAY[
    pg_temp.allowed(:'ta', 'sms', '+14155550900'),
    pg_temp.allowed(:'tp', 'sms', '+14155550901'),
    pg_temp.allowed(:'tp', 'sms', '+15005550006'),
    pg_temp.allowed(:'tp', 'email', 'x@hermes.example'),
    pg_temp.allowed(:'ta', 'whatsapp', '+14155550901'),
    pg_temp.allowed(:'ta', 'sms', '+18005550100'),
    pg_temp.allowed(:'ta', 'email', 'bob@a-co.example'),
    pg_temp.allowed(:'ta', 'sms', 'HERMES')],
  ARRAY[false, false, false, false, false, false, false, false],
  'refused: another tenant''s number (both ways); shared ones for a production tenant; a number of no tenant; '
  'an address at a parent domain; no number at all');

-- update: reassign, suspend, release ------------------------------------------------------
SELECT (:'s1'::jsonb) ->> 'id' AS s1_id \gset
SELECT is(app.update_sender(:'admin_token', :'s1_id', jsonb_build_object('tenant_id', :'tp')) ->> 'tenant_id', :'tp',
  'reassigned to the production tenant');
SELECT is(ARRAY[pg_temp.allowed(:'ta', 'sms', '+14155550901'), pg_temp.allowed(:'tp', 'sms', '+14155550901')],
  ARRAY[false, true], 'the number moved: its new owner may send from it, the old one no longer');
SELECT set_eq($$SELECT tenant_id, details ->> 'to_tenant_id' FROM app.audit_log WHERE action = 'sender.reassign'$$,
  format($$VALUES (%L::uuid, %L), (%L::uuid, %L)$$, :'tp', :'tp', :'ta', :'tp'),
  'the reassignment is in both tenants'' audit logs');
SELECT is(private.update_sender(NULL, :'s1_id', '{"status": "suspended"}') ->> 'status', 'suspended', 'suspended');
SELECT is(pg_temp.allowed(:'tp', 'sms', '+14155550901'), false, 'a suspended sender sends for nobody');
SELECT is(pg_temp.problem(format($$SELECT private.register_sender(NULL, '{"channel": "sms", "address": "+14155550901", "tenant_id": "%s"}')$$, :'ta')),
  'HM409 sender_taken', 'and is still its owner''s');
SELECT is(private.update_sender(NULL, :'s1_id', '{"status": "active", "number_type": "short_code", "time_zone": null}')
            - 'id' - 'created_at' - 'updated_at' - 'tenant_id' - 'address' - 'channel' - 'kind' - 'shared' - 'provider_account_id' - 'released_at',
  '{"status": "active", "number_type": "short_code", "time_zone": null}'::jsonb, 'active again, re-typed, its zone cleared');
SELECT is(ARRAY[
    pg_temp.problem(format($$SELECT private.update_sender(NULL, %L, '{"address": "+14155550903"}')$$, :'s1_id')),
    pg_temp.problem(format($$SELECT private.update_sender(NULL, %L, '{"status": "gone"}')$$, :'s1_id')),
    pg_temp.problem(format($$SELECT private.update_sender(NULL, %L, '{"shared": true}')$$, :'s1_id')),
    pg_temp.problem(format($$SELECT private.update_sender(NULL, %L, '{"number_type": null}')$$, :'s1_id')),
    pg_temp.problem(format($$SELECT private.update_sender(NULL, %L, '{"time_zone": "Nowhere/Land"}')$$, :'s1_id')),
    pg_temp.problem(format($$SELECT private.update_sender(NULL, %L, '{"tenant_id": "not-a-uuid"}')$$, :'s1_id')),
    pg_temp.problem(format($$SELECT private.update_sender(NULL, %L, '{"status": "active"}')$$, gen_random_uuid())),
    pg_temp.problem(format($$SELECT app.update_sender(%L, %L, '{"status": "active"}')$$, :'token_a', :'s1_id'))],
  ARRAY['HM422 unknown_field', 'HM422 invalid_status', 'HM422 conflicting_fields', 'HM422 invalid_number_type',
        'HM422 invalid_time_zone', 'HM422 invalid_field', 'HM404 sender_not_found', 'HM403 insufficient_scope'],
  'an address never changes; status, shared, type, zone and tenant are validated; unknown id 404; admin only');
-- A shared number given to a tenant stops being shared.
SELECT id AS wa_shared FROM app.senders WHERE address = '+14155550170' \gset
SELECT is(private.update_sender(NULL, :'wa_shared', jsonb_build_object('tenant_id', :'tp')) ->> 'shared', 'false',
  'a shared number given to a tenant is that tenant''s alone');
SELECT is(pg_temp.allowed(:'ta', 'whatsapp', '+14155550170'), false, 'and no longer the sandbox tenants''');
-- A tenant's account moves with the number only if the new owner owns it.
INSERT INTO app.provider_accounts (id, tenant_id, provider, name, credentials, key_id)
VALUES (gen_random_uuid(), :'tp', 'twilio', 'P', ('\x' || repeat('ab', 40))::bytea, 'k1') RETURNING id AS acc \gset
SELECT is(private.update_sender(NULL, :'s1_id', jsonb_build_object('provider_account_id', :'acc')) ->> 'provider_account_id', :'acc',
  'the owner''s account');
SELECT is(pg_temp.problem(format($$SELECT private.update_sender(NULL, %L, '{"tenant_id": "%s"}')$$, :'s1_id', :'ta')),
  'HM422 provider_account_mismatch', 'reassigned without naming an account of the new owner: HM422');
SELECT is(pg_temp.problem(format($$SELECT private.update_sender(NULL, %L, '{"tenant_id": "%s", "provider_account_id": "%s"}')$$, :'s1_id', :'ta', :'acc')),
  'HM422 invalid_provider_account', 'nor with the old owner''s account');
SELECT is(private.update_sender(NULL, :'s1_id', jsonb_build_object('tenant_id', :'ta', 'provider_account_id', NULL))
            ->> 'provider_account_id', NULL, 'with null: the deployment''s account');
-- Released: final, and the number is free again.
SELECT is(private.update_sender(NULL, :'s1_id', '{"status": "released"}') ->> 'status', 'released', 'released');
SELECT ok((SELECT released_at IS NOT NULL FROM app.senders WHERE id = :'s1_id'), 'with the time it was');
SELECT is(pg_temp.problem(format($$SELECT private.update_sender(NULL, %L, '{"status": "active"}')$$, :'s1_id')),
  'HM409 sender_released', 'a released sender changes no more');
SELECT is(private.register_sender(NULL, jsonb_build_object('channel', 'sms', 'address', '+14155550901', 'tenant_id', :'tp'))
            ->> 'tenant_id', :'tp', 'its number may be registered again, to anyone');

-- list -------------------------------------------------------------------------------
SELECT is((SELECT array_agg(x ->> 'address' ORDER BY x ->> 'address')
             FROM jsonb_array_elements(app.list_senders(:'admin_token', jsonb_build_object('tenant_id', :'ta'))) x),
  ARRAY['+14155550901', 'ceo@mail.a-co.example', 'mail.a-co.example', 'sales@a-co.example'],
  'the admin list, by tenant (released rows too)');
SELECT is(jsonb_array_length(app.list_senders(:'admin_token', '{"address": "+1 415 555 0901", "channel": "sms"}')), 2,
  'by address (typed any way): the released row and the live one');
SELECT is(jsonb_array_length(app.list_senders(:'admin_token', '{"shared": true}')), 2, 'the shared ones');
SELECT is(ARRAY[pg_temp.problem(format($$SELECT app.list_senders(%L, '{"colour": "red"}')$$, :'admin_token')),
                pg_temp.problem(format($$SELECT app.list_senders(%L, '{"tenant_id": "x"}')$$, :'admin_token')),
                pg_temp.problem(format($$SELECT app.list_senders(%L)$$, :'token_a'))],
  ARRAY['HM422 invalid_filter', 'HM422 invalid_filter', 'HM403 insufficient_scope'], 'filters are validated; admin only');

-- inbound: whose is the number written to ---------------------------------------------
CREATE FUNCTION pg_temp.inbound(p_channel text, p_to text, p_tenant uuid) RETURNS text
LANGUAGE sql AS $$
  SELECT coalesce(i.tenant_id::text, i.problem_status || ' ' || i.problem_code) FROM private.inbound_tenant(p_channel, p_to, p_tenant) i
$$;
SELECT is(ARRAY[pg_temp.inbound('sms', '+14155550900', NULL), pg_temp.inbound('sms', '+1 415 555 0900', :'tp'),
                pg_temp.inbound('sms', '+14155550900', :'ta'), pg_temp.inbound('sms', '+14155550000', NULL),
                pg_temp.inbound('sms', '+14155550000', :'ta'), pg_temp.inbound('whatsapp', '+14155550900', NULL)],
  ARRAY[:'tp', :'tp', '403 number_not_yours', '404 unknown_number', '404 unknown_number', '404 unknown_number'],
  'by the registry: its owner; a per-tenant URL must name the owner; a number of no one, or on another channel: 404');
SELECT is(ARRAY[pg_temp.inbound('sms', '+15005550006', :'ta'), pg_temp.inbound('sms', '+15005550006', :'tp'),
                pg_temp.inbound('sms', '+15005550006', NULL)],
  ARRAY[:'ta', '403 number_not_yours', :'ta'],
  'a shared number: through a test tenant''s URL, that tenant; a production tenant''s, refused; through none, the '
  'one test tenant whose default it is (the make run demo)');
SELECT (pg_temp.new_tenant('A2 Co') -> 'tenant' ->> 'id') AS ta2 \gset
SELECT is(ARRAY[pg_temp.inbound('sms', '+15005550006', NULL), pg_temp.inbound('sms', '+15005550006', :'ta2')],
  ARRAY['404 shared_number', :'ta2'], 'two tenants have it: through no URL it is no one''s, through theirs it is theirs');
SELECT private.update_sender(NULL, id, '{"status": "suspended"}') ->> 'status' AS s900 FROM app.senders WHERE address = '+14155550900' \gset
SELECT is(pg_temp.inbound('sms', '+14155550900', NULL), :'tp', 'a suspended number still reaches its owner (a STOP must count)');
SELECT app.record_inbound('twilio', NULL, 'SMreg1', '+14155550190', '+14155550900', 'STOP') AS rin \gset
SELECT results_eq(format($$SELECT tenant_id, kind FROM app.consent_events WHERE id = %s$$, (:'rin'::jsonb) ->> 'consent_event_id'),
  format($$VALUES (%L::uuid, 'opt_out')$$, :'tp'), 'an inbound STOP with no tenant named: its number''s owner''s ledger');
SELECT is((:'rin'::jsonb) ->> 'reply_message_id', NULL, 'no confirmation from a suspended number (its reply is refused)');
SELECT pg_temp.counts() AS before_in \gset
SELECT is(pg_temp.problem(format($$SELECT app.record_inbound('twilio', %L, 'SMreg2', '+14155550191', '+14155550900', 'STOP')$$, :'ta')),
  'HM403 number_not_yours', 'through another tenant''s URL: HM403');
SELECT is(pg_temp.counts(), :'before_in'::jsonb, 'and nothing recorded');
SELECT is(app.record_whatsapp_inbound(jsonb_build_array(
            jsonb_build_object('id', 'wamid.reg1', 'from', '+14155550190', 'to', '+14155550170', 'body', 'hi'))) -> 0 ->> 'tenant_id',
  :'tp', 'WhatsApp: the business number''s owner');

-- api.senders: a tenant's own and, outside production, the shared ones --------------------
SET LOCAL ROLE hermes_integrator;
SELECT set_config('hermes.tenant_id', :'ta', true) IS NOT NULL AS as_a \gset
SELECT set_eq('SELECT channel, address, shared FROM api.senders',
  $$VALUES ('email', 'sales@a-co.example', false), ('email', 'mail.a-co.example', false),
           ('email', 'ceo@mail.a-co.example', false), ('sms', '+15005550006', true), ('email', 'hermes.example', true)$$,
  'a test tenant: its senders and the shared ones (not the released, not others'')');
SELECT set_config('hermes.tenant_id', :'tp', true) IS NOT NULL AS as_p \gset
SELECT set_eq('SELECT channel, address, shared FROM api.senders',
  $$VALUES ('sms', '+14155550900', false), ('sms', '+14155550901', false), ('whatsapp', '+14155550170', false)$$,
  'a production tenant: its own only');
SELECT set_config('hermes.tenant_id', '', true) IS NOT NULL AS as_none \gset
SELECT is_empty('SELECT * FROM api.senders', 'no tenant: nothing');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
