-- app.record_consent: POST /v1/consents. The token decides the tenant and needs
-- compliance:write; a bad event is an HM4xx problem and records nothing.
BEGIN;
\ir ../../helpers.psql
SELECT plan(8);

SELECT pg_temp.new_tenant('Consent API Co') AS r \gset
SELECT (:'r'::jsonb) -> 'tenant' ->> 'id' AS t, (:'r'::jsonb) -> 'api_key' ->> 'token' AS token \gset
SELECT pg_temp.new_key(:'t', 'sender only', ARRAY['messages:write']) ->> 'token' AS sender_token \gset

SELECT app.record_consent(:'token', '{"address": "+14155550100", "kind": "opt_out", "channel": "sms"}') AS e \gset
SELECT results_eq($$SELECT kind, channel, scope, source FROM app.consent_events$$,
  $$VALUES ('opt_out', 'sms', 'tenant', 'api')$$, 'records the event');
SELECT is((SELECT tenant_id FROM app.consent_events), :'t'::uuid, 'for the token''s tenant');
SELECT is((SELECT api_key_id FROM app.consent_events), (SELECT id FROM app.api_keys WHERE tenant_id = :'t' AND name = 'default'),
  'and its key');
SELECT is(:'e'::jsonb ->> 'address', '+14155550100', 'returns the event');
SELECT is(pg_temp.problem(format($$SELECT app.record_consent(%L, '{"address": "+14155550100", "kind": "opt_out"}')$$, :'sender_token')),
  'HM403 insufficient_scope', 'a key without compliance:write: HM403 insufficient_scope');
SELECT is(pg_temp.problem($$SELECT app.record_consent('hk_test_nope', '{"address": "+14155550100", "kind": "opt_out"}')$$),
  'HM401 invalid_api_key', 'no valid key: HM401');
SELECT is(pg_temp.problem(format($$SELECT app.record_consent(%L, '{"address": "+14155550100", "kind": "opt_out", "scope": "global"}')$$, :'token')),
  'HM422 global_scope_forbidden', 'a bad event: its HM422 problem');
SELECT is((SELECT count(*)::int FROM app.consent_events), 1, 'the refusals recorded nothing');

SELECT * FROM finish();
ROLLBACK;
