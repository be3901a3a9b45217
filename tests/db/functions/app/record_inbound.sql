-- app.record_inbound: an inbound message becomes a conversation, a keyword becomes a
-- consent event (source keyword) and exactly one confirmation reply; retries of the
-- same provider message change nothing.
BEGIN;
\ir ../../helpers.psql
SELECT plan(26);

SELECT (pg_temp.new_tenant('Inbound Co') -> 'tenant' ->> 'id') AS t \gset
SELECT app.record_inbound('twilio', :'t', 'SMin1', '+14155550100', '+15005550006', 'hello there') AS r \gset
SELECT is(:'r'::jsonb - 'inbound_id', '{"duplicate": false}'::jsonb, 'a message without a keyword: just recorded');
SELECT results_eq(format($$SELECT contact_address, sender_address, inbound_count FROM app.conversations WHERE tenant_id = %L$$, :'t'),
  $$VALUES ('+14155550100', '+15005550006', 1::bigint)$$, 'its conversation');

-- STOP: an opt-out and one confirmation reply, sent although the number just opted out.
SELECT app.record_inbound('twilio', :'t', 'SMin2', '+14155550100', '+15005550006', 'Stop!', '{"NumMedia": "0"}') AS s \gset
SELECT is((:'s'::jsonb) ->> 'action', 'opt_out', 'STOP: opt_out');
SELECT results_eq(format($$SELECT kind, channel, scope, source, evidence ->> 'keyword', evidence ->> 'provider_message_id'
                             FROM app.consent_events WHERE id = %s$$, (:'s'::jsonb) ->> 'consent_event_id'),
  $$VALUES ('opt_out', 'sms', 'tenant', 'keyword', 'STOP', 'SMin2')$$, 'a keyword opt-out event with the message as evidence');
SELECT results_eq(format($$SELECT to_address, from_address, category, status FROM app.messages WHERE id = %L$$,
                         (:'s'::jsonb) ->> 'reply_message_id'),
  $$VALUES ('+14155550100', '+15005550006', 'compliance', 'queued')$$,
  'one confirmation reply, from the number written to, queued despite the opt-out');
SELECT ok((SELECT body LIKE 'Inbound Co: you are unsubscribed%' FROM app.messages WHERE id = ((:'s'::jsonb) ->> 'reply_message_id')::uuid),
  'with the default text naming the tenant');
SELECT is(pg_temp.verdict(:'t', '+14155550100'), 'opted_out', 'other messages to them are refused');
SELECT is(private.submit_message(:'t', NULL, '{"to": "+14155550100", "body": "promo"}') #>> '{message,status}', 'rejected',
  'a tenant''s message after the STOP is rejected');
SELECT is(pg_temp.problem($$SELECT private.submit_message((SELECT id FROM app.tenants WHERE name = 'Inbound Co'), NULL,
            '{"to": "+14155550100", "body": "sneaky", "category": "compliance"}')$$), 'HM422 invalid_category',
  'no caller may send category compliance');

-- The provider retries the webhook: nothing new.
SELECT pg_temp.counts() AS before \gset
SELECT is(app.record_inbound('twilio', :'t', 'SMin2', '+14155550100', '+15005550006', 'Stop!') - 'inbound_id',
  '{"duplicate": true}'::jsonb, 'the same provider message again: duplicate');
SELECT is(pg_temp.counts(), :'before'::jsonb, 'and nothing written: no second event, no second reply');

-- START: an opt-in (newer) lifts it, with its own confirmation; HELP: the help text.
SELECT app.record_inbound('twilio', :'t', 'SMin3', '+14155550100', '+15005550006', 'start') AS st \gset
SELECT is((:'st'::jsonb) ->> 'action', 'opt_in', 'START: opt_in');
SELECT is(pg_temp.verdict(:'t', '+14155550100'), 'eligible', 'and the number may be messaged again');
SELECT app.record_inbound('twilio', :'t', 'SMin4', '+14155550100', '+15005550006', 'HELP') AS h \gset
SELECT results_eq(format($$SELECT (SELECT count(*)::int FROM app.consent_events WHERE tenant_id = %L), m.body LIKE '%%reply STOP%%'
                             FROM app.messages m WHERE m.id = %L$$, :'t', (:'h'::jsonb) ->> 'reply_message_id'),
  $$VALUES (2, true)$$, 'HELP: a help reply, no consent event');
SELECT is((SELECT array_agg(keyword ORDER BY id) FROM app.inbound_messages WHERE tenant_id = :'t'),
  ARRAY[NULL, 'STOP', 'START', 'HELP'], 'every inbound message stored once, with its keyword');

SELECT is(ARRAY[pg_temp.problem($$SELECT app.record_inbound('twilio', gen_random_uuid(), 'SMx', '+14155550100', '+15005550006', 'x')$$),
                pg_temp.problem(format($$SELECT app.record_inbound('twilio', %L, 'SMx', 'nobody', '+15005550006', 'x')$$, :'t'))],
  ARRAY['HM404 tenant_not_found', 'HM422 invalid_address'], 'unknown tenant, bad numbers');
SELECT ok(NOT has_function_privilege('hermes_worker', 'app.record_inbound(text,uuid,text,text,text,text,jsonb)', 'EXECUTE'),
  'only the API records inbound messages');

-- WhatsApp: Meta's webhook is the app's; the tenant is the one whose business number got it.
SELECT (pg_temp.new_tenant('WA Inbound Co') -> 'tenant' ->> 'id') AS tw \gset
UPDATE app.tenants SET default_whatsapp_from = '+14155550170' WHERE id = :'tw';
SELECT app.record_whatsapp_inbound(jsonb_build_array(
  jsonb_build_object('id', 'wamid.in1', 'from', '+14155550190', 'to', '+1 415-555-0170', 'body', 'STOP',
                     'params', jsonb_build_object('phone_number_id', '100000000000001')),
  jsonb_build_object('id', 'wamid.in2', 'from', '+14155550190', 'to', '+14155550999', 'body', 'STOP'))) AS w \gset
SELECT is(jsonb_array_length(:'w'::jsonb), 2, 'one result per message');
SELECT is((:'w'::jsonb) -> 0 ->> 'tenant_id', :'tw', 'the tenant is found by its WhatsApp number (written any way)');
SELECT is((:'w'::jsonb) -> 1, '{"id": "wamid.in2", "skipped": "unknown_number"}'::jsonb,
  'a number no tenant sends from: skipped, nothing recorded');
SELECT results_eq(format($$SELECT kind, channel, source, evidence ->> 'provider' FROM app.consent_events WHERE id = %s$$,
                         (:'w'::jsonb) -> 0 ->> 'consent_event_id'),
  $$VALUES ('opt_out', 'whatsapp', 'keyword', 'whatsapp')$$, 'STOP over WhatsApp opts out of WhatsApp');
SELECT is(ARRAY[pg_temp.verdict(:'tw', '+14155550190', 'whatsapp', NULL, '+14155550170'),
                pg_temp.verdict(:'tw', '+14155550190', 'sms')],
  ARRAY['opted_out', 'eligible'], 'WhatsApp refused, SMS still allowed (STOPALL would stop both)');
SELECT results_eq(format($$SELECT channel, to_address, from_address, category FROM app.messages WHERE id = %L$$,
                         (:'w'::jsonb) -> 0 ->> 'reply_message_id'),
  $$VALUES ('whatsapp', '+14155550190', '+14155550170', 'compliance')$$, 'the confirmation goes back over WhatsApp');
SELECT is(app.record_whatsapp_inbound('[{"id": "wamid.in1", "from": "+14155550190", "to": "+14155550170", "body": "STOP"}]')
            -> 0 ->> 'duplicate', 'true', 'Meta retries the webhook: a duplicate, nothing new');
SELECT is(pg_temp.problem($$SELECT app.record_whatsapp_inbound('{}')$$), 'HM422 invalid_inbound', 'not an array: HM422');
SELECT ok(has_function_privilege('hermes_api', 'app.record_whatsapp_inbound(jsonb)', 'EXECUTE')
          AND NOT has_function_privilege('hermes_worker', 'app.record_whatsapp_inbound(jsonb)', 'EXECUTE'),
  'only the API records them');

SELECT * FROM finish();
ROLLBACK;
