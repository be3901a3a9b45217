-- private.provider_error_is_permanent: whether a provider's refusal is final (no retry),
-- from the HTTP status it answered (and its own code where that matters: FCM,
-- WhatsApp). Twilio: 400, 413 and 422 only. private.provider_error_suppression.
BEGIN;
\ir ../../helpers.psql
SELECT plan(26);

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

SELECT is(ARRAY[private.provider_error_is_permanent('fcm', 404, 'UNREGISTERED'),
                private.provider_error_is_permanent('fcm', 400, 'INVALID_ARGUMENT'),
                private.provider_error_is_permanent('fcm', 403, 'SENDER_ID_MISMATCH'),
                private.provider_error_is_permanent('fcm', 403, 'PERMISSION_DENIED'),
                private.provider_error_is_permanent('fcm', 401, 'THIRD_PARTY_AUTH_ERROR'),
                private.provider_error_is_permanent('fcm', 429, 'QUOTA_EXCEEDED'),
                private.provider_error_is_permanent('fcm', 503, 'UNAVAILABLE'),
                private.provider_error_is_permanent('fcm', NULL, 'ClientConnectorError')],
  ARRAY[true, true, true, false, false, false, false, false],
  'fcm: UNREGISTERED, INVALID_ARGUMENT, SENDER_ID_MISMATCH are permanent; credentials, quota, unavailable, no answer are not');
SELECT is(ARRAY[private.provider_error_is_permanent('whatsapp', 400, '131026'),
                private.provider_error_is_permanent('whatsapp', 400, '131047'),
                private.provider_error_is_permanent('whatsapp', 400, NULL),
                private.provider_error_is_permanent('whatsapp', 400, '130429'),
                private.provider_error_is_permanent('whatsapp', 400, '131056'),
                private.provider_error_is_permanent('whatsapp', 400, '80007'),
                private.provider_error_is_permanent('whatsapp', 429, '130429'),
                private.provider_error_is_permanent('whatsapp', 401, '190'),
                private.provider_error_is_permanent('whatsapp', 500, '131000')],
  ARRAY[true, true, true, false, false, false, false, false, false],
  'whatsapp: a 400 refusal is permanent, except the Graph API''s throttling codes; 401, 429, 5xx are not');
SELECT is(ARRAY[private.provider_error_is_permanent('ses', 400, 'MessageRejected'),
                private.provider_error_is_permanent('ses', 429, 'TooManyRequestsException'),
                private.provider_error_is_permanent('twilio', 400, NULL)],
  ARRAY[true, false, true], 'the code changes nothing for ses and twilio');
SELECT is(ARRAY(SELECT c FROM unnest(ARRAY['1', '2', '3', '4', '5', '6', '7', '8', '9', '15', '29']) c
                WHERE private.provider_error_is_permanent('vonage', 200, c)),
  ARRAY['2', '3', '6', '7', '15', '29'], 'vonage: parameters, message, barred number, sender, destination are final');
SELECT is(ARRAY[private.provider_error_suppression('fcm', 'UNREGISTERED'),
                private.provider_error_suppression('fcm', 'INVALID_ARGUMENT'),
                private.provider_error_suppression('twilio', 'UNREGISTERED'),
                private.provider_error_suppression('fcm', NULL)],
  ARRAY['hard_bounce', NULL, NULL, NULL]::text[], 'only FCM UNREGISTERED lists the address (hard_bounce)');
SELECT ok(NOT has_function_privilege('hermes_worker', 'private.provider_error_suppression(text,text)', 'EXECUTE'),
  'private.provider_error_suppression: no client role may call it');

SELECT is((SELECT provolatile::text || ':' || prosecdef::text FROM pg_proc
            WHERE oid = 'private.provider_error_is_permanent(text,integer,text)'::regprocedure), 'i:false',
  'IMMUTABLE, not SECURITY DEFINER');
SELECT ok(NOT has_function_privilege('hermes_worker', 'private.provider_error_is_permanent(text,integer,text)', 'EXECUTE')
          AND NOT has_function_privilege('hermes_api', 'private.provider_error_is_permanent(text,integer,text)', 'EXECUTE'),
  'no client role may call it directly');

SELECT is(ARRAY[private.provider_error_is_opt_out('twilio', '21610'), private.provider_error_is_opt_out('twilio', '21211'),
                private.provider_error_is_opt_out('twilio', NULL), private.provider_error_is_opt_out('vonage', '21610')],
  ARRAY[true, false, false, false], 'opt-out errors: Twilio 21610 only');

SELECT * FROM finish();
ROLLBACK;
