-- Receipts bound to their provider and account (issue 19): the attempt id of a
-- callback travels in the clear, so it binds nothing by itself. A callback is stored
-- (and applied) only for an attempt of its provider and, at a provider that signs
-- callbacks per account, of the account whose secret verified it (account_id; none:
-- the deployment's). The API opens only webhook-verification secrets, never the
-- credentials; the account an inbound message belongs to is one function's answer.
BEGIN;
\ir ../../helpers.psql
SELECT plan(16);

SELECT private.create_tenant(NULL, 'Own Co', 'prod', '+14155550912') AS r \gset
SELECT (:'r'::jsonb) -> 'tenant' ->> 'id' AS t, (:'r'::jsonb) -> 'api_key' ->> 'token' AS token \gset
SELECT pg_temp.set_policy(:'t', '{"default_category": "transactional"}');
SELECT (pg_temp.new_tenant('Deployment Co') -> 'tenant' ->> 'id') AS td \gset
SELECT gen_random_uuid() AS acc \gset
SELECT '\x' || repeat('ab', 40) AS blob \gset
SELECT app.set_provider_account(:'token', :'acc', 'twilio', 'Own', :'blob'::bytea, 'k1', :'blob'::bytea, 'k1') IS NOT NULL AS s \gset

SELECT (private.submit_message(:'t', NULL, '{"to": "+14155550123", "body": "own"}') -> 'message' ->> 'id') AS m \gset
SELECT pg_temp.attempt_of(:'m') AS a \gset
SELECT pg_temp.new_message(:'td') AS md \gset
SELECT pg_temp.attempt_of(:'md') AS ad \gset
CREATE FUNCTION pg_temp.receipt(p_attempt uuid, p_sid text, p_provider text, p_account uuid) RETURNS text
LANGUAGE sql AS $$
  SELECT app.record_receipts(jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
    'provider', p_provider, 'attempt_id', p_attempt, 'provider_message_id', p_sid,
    'provider_status', 'delivered', 'account_id', p_account)))) -> 0 ->> 'outcome'
$$;

-- An attempt sent through the tenant's account.
SELECT is(pg_temp.receipt(:'a', 'SM-dep', 'twilio', NULL), 'refused',
  'verified with the deployment''s secret, for an attempt of a tenant account: refused');
SELECT is(pg_temp.receipt(:'a', 'SM-other', 'twilio', gen_random_uuid()), 'refused',
  'verified with another account''s secret: refused');
SELECT is(pg_temp.receipt(:'a', 'VN-1', 'vonage', :'acc'), 'refused', 'another provider: refused');
SELECT is((SELECT count(*)::int FROM app.receipts WHERE attempt_id = :'a'), 0, 'nothing refused is stored');
SELECT is(pg_temp.receipt(:'a', 'SM-own', 'twilio', :'acc'), 'queued', 'verified with the account''s own secret: queued');
SELECT is((SELECT account_id FROM app.receipts WHERE attempt_id = :'a'), :'acc'::uuid, 'stored with its account');
SELECT is(pg_temp.problem(format($$SELECT app.record_receipt('twilio', %L, 'SM-x', 'sent')$$, :'a')),
  'HM403 receipt_refused', 'app.record_receipt (the deployment''s secret) refuses it too');

-- An attempt through the deployment's account.
SELECT is(pg_temp.receipt(:'ad', 'SM-d1', 'twilio', :'acc'), 'refused',
  'a tenant account''s signature on an attempt of the deployment''s: refused');
SELECT is(pg_temp.receipt(:'ad', 'SM-d2', 'twilio', NULL), 'queued', 'the deployment''s own: queued');
SELECT is(pg_temp.receipt(:'ad', 'SM-d2', 'twilio', NULL), 'duplicate', 'and once only');

-- A hand-off the worker read back (not a callback) is its attempt's by construction.
SELECT is(private.insert_receipts('lookup', jsonb_build_array(jsonb_build_object(
    'provider', 'twilio', 'attempt_id', :'a', 'provider_message_id', 'SM-look', 'provider_status', 'sent'))) -> 0 ->> 'outcome',
  'queued', 'a lookup receipt is not a callback: stored');

-- The account of an inbound message: the tenant's active account for the provider.
SELECT is(app.inbound_provider_account('twilio', :'t', '+14155550912'), :'acc'::uuid, 'a Twilio inbound to the tenant''s registered number: its account');
SELECT is(app.inbound_provider_account('twilio', :'td', '+15005550006'), NULL, 'a tenant without one: the deployment''s');
-- (and a number that is not the URL tenant's has none: private.inbound_tenant refuses it)

-- Privileges: the API opens webhook secrets only; the workers the credentials.
SELECT ok(NOT has_function_privilege('hermes_api', 'app.provider_account_credentials(uuid[])', 'EXECUTE')
          AND has_function_privilege('hermes_worker', 'app.provider_account_credentials(uuid[])', 'EXECUTE'),
  'hermes_api cannot read sealed credentials; hermes_worker can');
SELECT ok(has_function_privilege('hermes_api', 'app.provider_account_webhook_secrets(uuid[])', 'EXECUTE')
          AND NOT has_function_privilege('hermes_worker', 'app.provider_account_webhook_secrets(uuid[])', 'EXECUTE'),
  'hermes_api reads sealed webhook secrets');
SELECT ok(has_function_privilege('hermes_worker', 'app.fill_webhook_secrets(jsonb)', 'EXECUTE')
          AND NOT has_function_privilege('hermes_api', 'app.fill_webhook_secrets(jsonb)', 'EXECUTE'),
  'the workers reseal older accounts'' webhook secrets; not the API');

SELECT * FROM finish();
ROLLBACK;
