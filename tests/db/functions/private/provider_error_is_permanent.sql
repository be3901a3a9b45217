-- private.provider_error_is_permanent: whether a provider's refusal is final (no retry),
-- from the HTTP status it answered. Twilio: 400, 413 and 422 only.
BEGIN;
\ir ../../helpers.psql
SELECT plan(20);

SELECT is(private.provider_error_is_permanent('twilio', 400), true, 'twilio 400 (e.g. 21211 invalid To): permanent');
SELECT is(private.provider_error_is_permanent('twilio', 413), true, 'twilio 413 (request too large): permanent');
SELECT is(private.provider_error_is_permanent('twilio', 422), true, 'twilio 422: permanent');
SELECT is(private.provider_error_is_permanent('twilio', 401), false, 'twilio 401 (bad credentials): transient');
SELECT is(private.provider_error_is_permanent('twilio', 403), false, 'twilio 403: transient');
SELECT is(private.provider_error_is_permanent('twilio', 404), false, 'twilio 404 (account not found): transient');
SELECT is(private.provider_error_is_permanent('twilio', 429), false, 'twilio 429 (too many requests): transient');
SELECT is(private.provider_error_is_permanent('twilio', 500), false, 'twilio 500: transient');
SELECT is(private.provider_error_is_permanent('twilio', 503), false, 'twilio 503: transient');
SELECT is(private.provider_error_is_permanent('twilio', NULL), false,
  'twilio without an HTTP status (timeout, connection lost): transient, never NULL');
SELECT is(
  ARRAY(SELECT s FROM generate_series(100, 599) s WHERE private.provider_error_is_permanent('twilio', s) ORDER BY s),
  ARRAY[400, 413, 422], 'of every HTTP status 100..599, exactly 400, 413 and 422 are permanent for twilio');
SELECT is(
  (SELECT count(*)::int FROM generate_series(100, 599) s WHERE private.provider_error_is_permanent('twilio', s) IS NULL),
  0, 'and none gives NULL');
SELECT is(private.provider_error_is_permanent('Twilio', 400), false, 'the provider name is case-sensitive: Twilio is unknown');
SELECT is(private.provider_error_is_permanent('nexmo', 400), false, 'an unknown provider: never permanent (400)');
SELECT is(private.provider_error_is_permanent('nexmo', 422), false, 'an unknown provider: never permanent (422)');
SELECT is(private.provider_error_is_permanent(NULL, 400), false, 'no provider: not permanent');
SELECT is(private.provider_error_is_permanent(NULL, NULL), false, 'nothing at all: false, not NULL');

SELECT is((SELECT provolatile::text || ':' || prosecdef::text FROM pg_proc
            WHERE oid = 'private.provider_error_is_permanent(text,integer)'::regprocedure), 'i:false',
  'IMMUTABLE, not SECURITY DEFINER');
SELECT ok(NOT has_function_privilege('hermes_worker', 'private.provider_error_is_permanent(text,integer)', 'EXECUTE')
          AND NOT has_function_privilege('hermes_api', 'private.provider_error_is_permanent(text,integer)', 'EXECUTE'),
  'no client role may call it directly');

SELECT is(ARRAY[private.provider_error_is_opt_out('twilio', '21610'), private.provider_error_is_opt_out('twilio', '21211'),
                private.provider_error_is_opt_out('twilio', NULL), private.provider_error_is_opt_out('vonage', '21610')],
  ARRAY[true, false, false, false], 'opt-out errors: Twilio 21610 only');

SELECT * FROM finish();
ROLLBACK;
