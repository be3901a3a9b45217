-- private.sign_jwt: an HS256 JWT over the claims, signed with private.settings.jwt_secret.
BEGIN;
\ir ../../helpers.psql
SELECT plan(11);

-- base64url without padding, decoded.
CREATE FUNCTION pg_temp.unb64url(p text) RETURNS bytea LANGUAGE sql AS $$
  SELECT decode(rpad(translate(p, '-_', '+/'), (length(p) + 3) / 4 * 4, '='), 'base64')
$$;

SELECT private.sign_jwt('{"role": "hermes_integrator", "kid": "hk_test_0123456789ab", "n": 1}') AS jwt \gset
SELECT split_part(:'jwt', '.', 1) AS h, split_part(:'jwt', '.', 2) AS p, split_part(:'jwt', '.', 3) AS s \gset

SELECT ok(:'jwt' ~ '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$', 'three base64url parts');
SELECT is(convert_from(pg_temp.unb64url(:'h'), 'UTF8')::jsonb, '{"alg": "HS256", "typ": "JWT"}'::jsonb,
  'the header is {"alg":"HS256","typ":"JWT"}');
SELECT is(convert_from(pg_temp.unb64url(:'p'), 'UTF8')::jsonb,
  '{"role": "hermes_integrator", "kid": "hk_test_0123456789ab", "n": 1}'::jsonb,
  'the payload is the claims');
SELECT is(:'s',
  private.base64url(private.hmac_sha256(
    convert_to((SELECT value FROM private.settings WHERE key = 'jwt_secret'), 'UTF8'),
    convert_to(:'h' || '.' || :'p', 'UTF8'))),
  'the signature is HMAC-SHA256(jwt_secret, header.payload)');
SELECT is(length(pg_temp.unb64url(:'s')), 32, 'the signature has 32 bytes');
SELECT is(private.sign_jwt('{"role": "hermes_integrator", "kid": "hk_test_0123456789ab", "n": 1}'), :'jwt',
  'signing is deterministic');

-- A known answer, independent of this file's arithmetic (computed with Python's hmac).
UPDATE private.settings SET value = 'secret' WHERE key = 'jwt_secret';
SELECT is(private.sign_jwt('{"role": "hermes_integrator"}'),
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjogImhlcm1lc19pbnRlZ3JhdG9yIn0.'
  'IFzg6fGV3wVWZjzdoteVD7Tqm9ZXmhFJFcrDpIA03Vk',
  'known answer with the secret "secret"');
SELECT isnt(split_part(private.sign_jwt('{"role": "hermes_integrator", "kid": "hk_test_0123456789ab", "n": 1}'), '.', 3),
  :'s', 'another secret gives another signature');
SELECT isnt(private.sign_jwt('{"n": 2}'), private.sign_jwt('{"n": 1}'), 'other claims, other token');
SELECT is(private.sign_jwt(NULL), NULL, 'NULL claims give NULL');
SELECT ok(length((SELECT value FROM private.settings WHERE key = 'jwt_secret')) >= 6,
  'the secret is set (the migrated one has 64 hex characters)');

SELECT * FROM finish();
ROLLBACK;
