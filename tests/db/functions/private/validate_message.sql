-- private.validate_message: the validation of one message request, shared by the single
-- and the batch intake. Returns the normalized recipient, sender and body, or a
-- problem (status, code, detail, hint) and no fields at all; raises nothing.
BEGIN;
\ir ../../helpers.psql
SELECT plan(41);

-- One call as a row, fields then problem.
CREATE FUNCTION pg_temp.v(p_request jsonb, p_default_from text DEFAULT '+15005550006')
RETURNS TABLE (to_address text, from_address text, body text, status int, code text, detail text, hint text)
LANGUAGE sql AS $$
  SELECT to_address, from_address, body, problem_status, problem_code, problem_detail, problem_hint
    FROM private.validate_message(p_request, p_default_from)
$$;
-- The code only, and whether any field leaked out alongside a problem.
CREATE FUNCTION pg_temp.code(p_request jsonb, p_default_from text DEFAULT '+15005550006') RETURNS text
LANGUAGE sql AS $$
  SELECT coalesce(status::text || ' ' || code, 'valid')
         || CASE WHEN problem_code IS NOT NULL
                      AND num_nonnulls(to_address, from_address, body, channel, vertical, category) > 0
                 THEN ' +fields' ELSE '' END
    FROM (SELECT v.*, v.problem_status AS status, v.problem_code AS code
            FROM private.validate_message(p_request, p_default_from) v) x
$$;

-- Valid requests.
SELECT results_eq($$SELECT * FROM pg_temp.v('{"to": "+14155550123", "body": "Hello"}')$$,
  $$VALUES ('+14155550123', '+15005550006', 'Hello', NULL::int, NULL::text, NULL::text, NULL::text)$$,
  'valid: the recipient, the default sender, the body; no problem');
SELECT results_eq($$SELECT * FROM pg_temp.v('{"to": "+442079460958", "body": " spaced ", "from": "+15005550007"}')$$,
  $$VALUES ('+442079460958', '+15005550007', ' spaced ', NULL::int, NULL::text, NULL::text, NULL::text)$$,
  'a given "from" is used; the body is kept as it is');
SELECT results_eq($$SELECT channel, vertical, category FROM private.validate_message('{"to": "+14155550123", "body": "x"}', '+15005550006')$$,
  $$VALUES ('sms', NULL::text, NULL::text)$$, 'by default: channel sms, no vertical, no category (the tenant''s default applies)');
SELECT results_eq($$SELECT channel, vertical, category FROM private.validate_message(
    '{"to": "+14155550123", "body": "x", "channel": "sms", "vertical": "solar", "category": "transactional"}', '+15005550006')$$,
  $$VALUES ('sms', 'solar', 'transactional')$$, 'channel, vertical and category as given');
-- SQL takes E.164 only: what people type is read by the API (phonenumbers) first.
SELECT is(ARRAY[pg_temp.code('{"to": "+1 (415) 555-0123", "body": "x"}'), pg_temp.code('{"to": "tel:+14155550123", "body": "x"}'),
                pg_temp.code('{"to": "(415) 555-0123", "body": "x"}'), pg_temp.code('{"to": "＋14155550123", "body": "x"}'),
                pg_temp.code('{"to": "+14155550123", "body": "x", "from": "+1 500-555-0007"}')],
  ARRAY['422 invalid_to', '422 invalid_to', '422 invalid_to', '422 invalid_to', '422 invalid_from'],
  'formatted, national, tel: and full-width forms are refused: not E.164');
SELECT is(ARRAY[pg_temp.code('{"to": "+14155550123", "body": "x", "channel": "email"}'),
                pg_temp.code('{"to": "+14155550123", "body": "x", "channel": "fax"}'),
                pg_temp.code('{"to": "+14155550123", "body": "x", "vertical": "Solar Panels"}'),
                pg_temp.code('{"to": "+14155550123", "body": "x", "category": "promo"}')],
  ARRAY['422 invalid_to', '422 invalid_channel', '422 invalid_vertical', '422 invalid_category'],
  'a phone number is no email address; unknown channels, bad verticals and categories are refused');
SELECT results_eq($$SELECT from_address, code FROM pg_temp.v('{"to": "+14155550123", "body": "x", "from": null}')$$,
  $$VALUES ('+15005550006', NULL::text)$$, '"from": null means the default sender');
SELECT is(pg_temp.code(jsonb_build_object('to', '+14155550123', 'body', repeat('😀', 1600))), 'valid',
  '1600 characters (of four bytes each) are valid');
SELECT is(pg_temp.code('{"to": "+14155550123", "body": "x", "from": "+15005550009"}', NULL), 'valid',
  'no default sender is needed when "from" is given');

-- Problems: every one is 422, and comes without fields.
SELECT results_eq($$SELECT * FROM pg_temp.v(NULL)$$,
  $$VALUES (NULL::text, NULL::text, NULL::text, 422, 'invalid_request', 'A message must be a JSON object.', NULL::text)$$,
  'no request: invalid_request');
SELECT is(ARRAY[pg_temp.code('["+14155550123", "hi"]'), pg_temp.code('"hi"'), pg_temp.code('42'), pg_temp.code('null')],
  ARRAY['422 invalid_request', '422 invalid_request', '422 invalid_request', '422 invalid_request'],
  'an array, a string, a number, JSON null: invalid_request');
SELECT results_eq($$SELECT code, detail, hint FROM pg_temp.v('{"to": "+14155550123", "body": "hi", "priority": 1, "a": 2}')$$,
  $$VALUES ('unknown_field', 'Unknown field(s): a, priority.', 'A message takes "to", "body" and optionally "from", "channel", "vertical", "category" (or "channels": [steps] and "contact_id").')$$,
  'unknown fields: unknown_field naming them, sorted, with a hint');
SELECT is(pg_temp.code('{"to": "nope", "idempotency_key": "k"}'), '422 unknown_field',
  'unknown fields are reported first (idempotency_key is not part of a message)');
SELECT results_eq($$SELECT code, detail, hint FROM pg_temp.v('{"body": "hi"}')$$,
  $$VALUES ('invalid_to', '"to" is required and must be a string.', 'Or name a "contact_id": its address for the channel is used.')$$,
  'no "to": invalid_to, with a hint');
SELECT is(ARRAY[pg_temp.code('{"to": 14155550123, "body": "hi"}'), pg_temp.code('{"to": null, "body": "hi"}')],
  ARRAY['422 invalid_to', '422 invalid_to'], '"to" a number or null: invalid_to');
SELECT results_eq(format('SELECT code, detail, hint FROM pg_temp.v(%L)', jsonb_build_object('to', repeat('call me ', 10), 'body', 'hi')),
  format($$VALUES ('invalid_to', %L, 'Use E.164 with country code, e.g. +14155550123.')$$,
         '"to" is not a phone number: ' || left(repeat('call me ', 10), 40) || '.'),
  '"to" not a phone number: invalid_to quoting at most 40 characters of it, with a hint');
SELECT is(pg_temp.code('{"to": "4155550123", "body": "hi"}'), '422 invalid_to', 'no country code: invalid_to');
SELECT results_eq($$SELECT code, detail FROM pg_temp.v('{"to": "+14155550123"}')$$,
  $$VALUES ('invalid_body', '"body" is required and must be a string.')$$, 'no "body": invalid_body');
SELECT is(ARRAY[pg_temp.code('{"to": "+14155550123", "body": 42}'), pg_temp.code('{"to": "+14155550123", "body": null}')],
  ARRAY['422 invalid_body', '422 invalid_body'], '"body" a number or null: invalid_body');
SELECT is(ARRAY[pg_temp.code('{"to": "+14155550123", "body": ""}'), pg_temp.code('{"to": "+14155550123", "body": "  "}'),
                pg_temp.code('{"to": "+14155550123", "body": "\n\t \r"}')],
  ARRAY['422 empty_body', '422 empty_body', '422 empty_body'], 'an empty or blank body: empty_body');
SELECT results_eq(format('SELECT * FROM pg_temp.v(%L)', jsonb_build_object('to', '+14155550123', 'body', repeat('é', 1601))),
  $$VALUES (NULL::text, NULL::text, NULL::text, 422, 'body_too_long', '"body" has 1601 characters; an SMS takes at most 1600.',
            'Shorten the message (Twilio concatenates at most 1600 characters).')$$,
  '1601 characters: body_too_long, counting characters, with a hint, without fields');
SELECT results_eq($$SELECT * FROM pg_temp.v('{"to": "+14155550123", "body": "hi", "from": 15005550006}')$$,
  $$VALUES (NULL::text, NULL::text, NULL::text, 422, 'invalid_from', '"from" must be a string.', NULL::text)$$,
  '"from" a number: invalid_from, without fields');
SELECT results_eq($$SELECT code, detail, hint FROM pg_temp.v('{"to": "+14155550123", "body": "hi", "from": "HERMES"}')$$,
  $$VALUES ('invalid_from', '"from" is not a phone number.', 'Use one of your E.164 sender numbers.')$$,
  '"from" not a phone number: invalid_from with a hint');
SELECT results_eq($$SELECT * FROM pg_temp.v('{"to": "+14155550123", "body": "hi"}', NULL)$$,
  $$VALUES (NULL::text, NULL::text, NULL::text, 422, 'missing_from',
            'No "from" given and the tenant has no default sender.', 'Pass "from" or set the tenant''s default_sms_from.')$$,
  'no "from" and no default sender: missing_from, without fields');
SELECT is(pg_temp.code('{"to": "+14155550123", "body": "hi", "from": null}', NULL), '422 missing_from',
  '"from": null and no default sender: missing_from');
SELECT is(pg_temp.code('{"to": "bad", "body": ""}'), '422 invalid_to', 'the first problem found is the one reported');

-- Raises nothing, over a whole set (a batch reports each item).
SELECT lives_ok($$SELECT * FROM (VALUES ('null'::jsonb), ('"x"'), ('{"to": 1}'), ('{"to": "+14155550123", "body": ""}')) r(j),
                                LATERAL private.validate_message(r.j, NULL)$$, 'raises nothing, whatever the input');
SELECT is((SELECT provolatile::text || ':' || prosecdef::text FROM pg_proc
            WHERE oid = 'private.validate_message(jsonb,text,boolean,jsonb)'::regprocedure), 'i:false',
  'IMMUTABLE (a function of its arguments only), not SECURITY DEFINER');
SELECT ok(NOT has_function_privilege('hermes_api', 'private.validate_message(jsonb,text,boolean,jsonb)', 'EXECUTE')
          AND NOT has_function_privilege('hermes_worker', 'private.validate_message(jsonb,text,boolean,jsonb)', 'EXECUTE'),
  'no client role may call it directly');

-- Channels and cascades. The tenant's defaults: senders, the cascade order, timeouts.
CREATE FUNCTION pg_temp.steps(p_request jsonb) RETURNS jsonb LANGUAGE sql AS $$
  SELECT coalesce(v.steps, to_jsonb(v.problem_code))
    FROM private.validate_message(p_request, '+15005550006', false,
           '{"email": "Acme <hello@acme.example>", "channels": ["email", "sms", "push"],
             "timeouts": {"sms": 300, "email": 900, "push": 60}}') v
$$;
SELECT is(pg_temp.steps('{"channel": "email", "to": " Ada@Example.COM ", "subject": "Hi", "body": "Hello", "html": "<p>Hello</p>"}'),
  '[{"channel": "email", "to": "ada@example.com", "from": "Acme <hello@acme.example>", "timeout_seconds": 900,
     "content": {"body": "Hello", "subject": "Hi", "html": "<p>Hello</p>"}}]'::jsonb,
  'email: the address trimmed and lower-cased, the default sender, subject, text and html, the channel''s timeout');
SELECT is(pg_temp.steps('{"channels": [
    {"channel": "email", "to": "bounce@simulator.amazonses.com", "subject": "Hi", "body": "Hello"},
    {"channel": "sms", "to": "+14155550123", "body": "Hello", "timeout_seconds": 30},
    {"channel": "push", "to": "fcm-token-0123456789abcdef", "title": "Hi", "body": "Hello", "data": {"k": "v"}}]}'),
  '[{"channel": "email", "to": "bounce@simulator.amazonses.com", "from": "Acme <hello@acme.example>", "timeout_seconds": 900,
     "content": {"body": "Hello", "subject": "Hi"}},
    {"channel": "sms", "to": "+14155550123", "from": "+15005550006", "timeout_seconds": 30, "content": {"body": "Hello"}},
    {"channel": "push", "to": "fcm-token-0123456789abcdef", "from": null, "timeout_seconds": 60,
     "content": {"body": "Hello", "title": "Hi", "data": {"k": "v"}}}]'::jsonb,
  'a cascade: each step in order, its own content and timeout (given, or the channel''s); push has no sender');
SELECT results_eq($$SELECT to_address, from_address, body, channel, contact_id FROM private.validate_message(
    '{"contact_id": "0190a000-0000-7000-8000-000000000001", "subject": "Hi", "body": "Hello", "title": "T"}',
    '+15005550006', false, '{"email": "hello@acme.example", "channels": ["email", "sms"]}')$$,
  $$VALUES (NULL::text, 'hello@acme.example', 'Hello', 'email', '0190a000-0000-7000-8000-000000000001'::uuid)$$,
  'to a contact without channels: the tenant''s order; "to" comes from the contact at intake');
SELECT is(pg_temp.steps('{"contact_id": "0190a000-0000-7000-8000-000000000001", "subject": "Hi", "body": "Hello", "title": "T"}')
            #> '{1,content}', '{"body": "Hello"}',
  'each step of the tenant''s order takes of the content what its channel takes (sms: the body)');
SELECT is(ARRAY[
    pg_temp.steps('{"channels": []}'), pg_temp.steps('{"channels": [{}, {}, {}, {}, {}, {}]}'),
    pg_temp.steps('{"channels": "sms"}'), pg_temp.steps('{"channels": [{"channel": "sms", "to": "+14155550123", "body": "x"}], "to": "+1"}'),
    pg_temp.steps('{"channels": [{"channel": "sms", "to": "+14155550123", "body": "x"}, 7]}'),
    pg_temp.steps('{"channels": [{"channel": "email", "to": "a@b.example", "body": "x"}]}'),
    pg_temp.steps('{"channels": [{"channel": "email", "to": "a@b.example", "body": "x", "subject": "two\nlines"}]}'),
    pg_temp.steps('{"channel": "email", "to": "+14155550123", "subject": "s", "body": "x"}'),
    pg_temp.steps('{"channel": "push", "to": "short", "body": "x"}'),
    pg_temp.steps('{"channel": "push", "to": "fcm-token-0123456789abcdef", "body": "x", "data": {"n": 1}}'),
    pg_temp.steps('{"channel": "push", "to": "fcm-token-0123456789abcdef", "body": "x", "from": "+15005550006"}'),
    pg_temp.steps('{"channel": "sms", "to": "+14155550123", "body": "x", "subject": "s"}'),
    pg_temp.steps('{"channel": "sms", "to": "+14155550123", "body": "x", "timeout_seconds": 0}'),
    pg_temp.steps('{"channel": "sms", "to": "+14155550123", "body": "x", "timeout_seconds": 1.5}'),
    pg_temp.steps('{"channel": "email", "to": "a@b.example", "subject": "s", "body": "x", "from": "not an address"}'),
    pg_temp.steps('{"channel": "whatsapp", "to": "+14155550123", "body": "x", "zzz": 1}'),
    pg_temp.steps('{"contact_id": "nope", "body": "x"}')],
  ARRAY['"invalid_channels"', '"invalid_channels"', '"invalid_channels"', '"conflicting_fields"', '"invalid_channels"',
        '"invalid_subject"', '"invalid_subject"', '"invalid_to"', '"invalid_to"', '"invalid_data"', '"invalid_from"',
        '"invalid_field"', '"invalid_timeout"', '"invalid_timeout"', '"invalid_from"', '"unknown_field"',
        '"invalid_contact_id"']::jsonb[],
  'bad steps: each refused with its code');
SELECT results_eq($$SELECT problem_code, problem_detail FROM private.validate_message(
    '{"channels": [{"channel": "sms", "to": "+14155550123", "body": "x"}, {"channel": "email", "to": "nope", "subject": "s", "body": "x"}]}',
    '+15005550006', false, '{"email": "hello@acme.example"}')$$,
  $$VALUES ('invalid_to', 'channels[1]: "to" is not an email address: nope.')$$,
  'a bad step is named by its index in "channels"');
SELECT results_eq($$SELECT problem_code, problem_detail FROM private.validate_message(
    '{"channel": "email", "to": "a@b.example", "subject": "s", "body": "x"}', '+15005550006')$$,
  $$VALUES ('missing_from', 'No "from" given and the tenant has no default email sender.')$$,
  'email without a sender and no default: missing_from');
SELECT is(pg_temp.steps('{"channel": "whatsapp", "to": "+14155550123", "body": "x"}') #> '{0,from}', 'null',
  'WhatsApp without a default sender: the provider account''s number (from null)');

-- WhatsApp templates: validated here, the body (for reading and dedup) made from them.
SELECT is(pg_temp.steps('{"channel": "whatsapp", "to": "+14155550123", "from": "+14155550170",
                          "template": {"name": "order_update", "language": "en_US", "parameters": ["Ada", "42"]}}') -> 0 -> 'content',
  '{"body": "[template order_update/en_US] Ada | 42", "template": {"name": "order_update", "language": "en_US", "parameters": ["Ada", "42"]}}'::jsonb,
  'a template without a body: the body names it and its parameters');
SELECT is(pg_temp.steps('{"channel": "whatsapp", "to": "+14155550123", "from": "+14155550170", "body": "Your order",
                          "template": {"name": "hello_world", "language": "en"}}') -> 0 -> 'content',
  '{"body": "Your order", "template": {"name": "hello_world", "language": "en"}}'::jsonb, 'with a body: kept as given');
SELECT is(ARRAY[pg_temp.steps('{"channel": "whatsapp", "to": "+14155550123", "template": {"name": "Bad Name", "language": "en"}}'),
                pg_temp.steps('{"channel": "whatsapp", "to": "+14155550123", "template": {"name": "x", "language": "english"}}'),
                pg_temp.steps('{"channel": "whatsapp", "to": "+14155550123", "template": {"name": "x", "language": "en", "parameters": [1]}}'),
                pg_temp.steps('{"channel": "whatsapp", "to": "+14155550123", "template": {"name": "x", "language": "en", "extra": 1}}'),
                pg_temp.steps('{"channel": "whatsapp", "to": "+14155550123", "template": "x"}'),
                pg_temp.steps('{"channel": "sms", "to": "+14155550123", "body": "x", "template": {"name": "x", "language": "en"}}')],
  ARRAY['"invalid_template"', '"invalid_template"', '"invalid_template"', '"invalid_template"', '"invalid_template"',
        '"invalid_field"']::jsonb[],
  'bad templates, and a template on SMS: refused');
SELECT results_eq($$SELECT jsonb_agg(s -> 'content' ORDER BY n) FROM jsonb_array_elements((private.validate_message(
    '{"contact_id": "00000000-0000-7000-8000-000000000001", "body": "hi", "template": {"name": "hi", "language": "en"}}',
    '+15005550006', false, '{"channels": ["whatsapp", "sms"], "whatsapp": "+14155550170"}')).steps) WITH ORDINALITY x(s, n)$$,
  $$VALUES ('[{"body": "hi", "template": {"name": "hi", "language": "en"}}, {"body": "hi"}]'::jsonb)$$,
  'a contact''s cascade: the template goes to the WhatsApp step only');

SELECT * FROM finish();
ROLLBACK;
