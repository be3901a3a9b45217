-- What makes a message request valid, in one place for the single and the batch
-- intake. p_request is one message; the batch's per-item "idempotency_key" is not part
-- of it. Two shapes:
--   one channel   {"to", "body", "channel"? (sms), "from"?, "subject"?, "html"?, "title"?,
--                  "data"?, "template"?, "timeout_seconds"?, ...}
--   a cascade     {"channels": [{"channel", "to"?, "from"?, "body", "subject"?, "html"?,
--                  "title"?, "data"?, "template"?, "timeout_seconds"?}, ...]}  (1 to 5 steps, in order)
-- WhatsApp takes a "template" instead of (or with) "body": {"name", "language",
-- "parameters"?: [strings]} -- an approved message template, the only thing WhatsApp
-- lets a business send outside the 24 hours after the person last wrote.
-- and either may name "contact_id" (an identity: a step without "to" is sent to the
-- contact's address for its channel, looked up at intake), "vertical" and "category".
-- A message to a contact that names no channel takes the tenant's cascade order
-- (p_defaults.channels), each step with the message's content.
-- p_defaults = {"sms", "email", "whatsapp": default senders, "channels": [...],
-- "timeouts": {channel: seconds}}; p_default_from is the SMS sender (the older callers').
-- Returns the first step's recipient, sender, body and channel, the vertical and
-- category (NULL when not given: the tenant's default applies), contact_id and steps
-- ([{channel, to, from, content, timeout_seconds}], each validated by
-- private.validate_step), or a problem: HTTP status, machine-readable code, detail and
-- hint, and no fields at all. Raises nothing, so a batch can report each invalid item
-- and accept the others. Numbers must be E.164 here: the API reads what people type
-- (national forms with the tenant's default country, tel: URIs, full-width digits) with
-- phonenumbers first.
DROP FUNCTION IF EXISTS private.validate_message(jsonb, text, boolean);

CREATE OR REPLACE FUNCTION private.validate_step(
  p_step jsonb, p_n int, p_defaults jsonb, p_has_contact boolean,
  OUT step jsonb, OUT problem_status int, OUT problem_code text, OUT problem_detail text, OUT problem_hint text)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_where   text := CASE WHEN p_n IS NULL THEN '' ELSE format('channels[%s]: ', p_n - 1) END;
  v_channel text;
  v_to      text;
  v_from    text;
  v_body    text;
  v_max     int;
  v_timeout numeric;
  v_unknown text;
BEGIN
  problem_status := 422;
  IF jsonb_typeof(p_step) IS DISTINCT FROM 'object' THEN
    problem_code := 'invalid_channels'; problem_detail := v_where || 'a step must be a JSON object.';
    RETURN;
  END IF;
  SELECT string_agg(k, ', ' ORDER BY k) INTO v_unknown
    FROM jsonb_object_keys(p_step) k
   WHERE k NOT IN ('channel', 'to', 'from', 'body', 'subject', 'html', 'title', 'data', 'template', 'timeout_seconds');
  IF v_unknown IS NOT NULL THEN
    problem_code := 'unknown_field'; problem_detail := format('%sUnknown field(s): %s.', v_where, v_unknown);
    problem_hint := 'A step takes "channel", "to", "from", "body", "subject", "html", "title", "data", "template", "timeout_seconds".';
    RETURN;
  END IF;

  v_channel := coalesce(p_step ->> 'channel', 'sms');
  IF jsonb_typeof(p_step -> 'channel') NOT IN ('string', 'null') OR v_channel NOT IN ('sms', 'email', 'push', 'whatsapp') THEN
    problem_code := 'invalid_channel';
    problem_detail := format('%sChannel %s is not one Hermes sends on.', v_where, left(p_step ->> 'channel', 40));
    problem_hint := '"channel" is sms (the default), email, push or whatsapp.';
    RETURN;
  END IF;

  -- The recipient, in the channel's form.
  IF p_step ? 'to' AND jsonb_typeof(p_step -> 'to') <> 'null' THEN
    IF jsonb_typeof(p_step -> 'to') <> 'string' THEN
      problem_code := 'invalid_to'; problem_detail := v_where || '"to" must be a string.';
      RETURN;
    END IF;
    v_to := CASE v_channel
              WHEN 'email' THEN private.address_key(p_step ->> 'to')
              -- a registration token: what private.address_key keeps as given
              WHEN 'push' THEN CASE WHEN private.address_key(p_step ->> 'to') = p_step ->> 'to'
                                         AND p_step ->> 'to' !~ '[+@]' THEN p_step ->> 'to' END
              ELSE CASE WHEN p_step ->> 'to' ~ '^\+[1-9][0-9]{6,14}$' THEN p_step ->> 'to' END
            END;
    IF v_to IS NULL OR (v_channel = 'email' AND v_to NOT LIKE '%@%') THEN
      problem_code := 'invalid_to';
      problem_detail := format('%s"to" is not %s: %s.', v_where,
                               CASE v_channel WHEN 'email' THEN 'an email address'
                                              WHEN 'push' THEN 'a device registration token'
                                              ELSE 'a phone number' END,
                               left(p_step ->> 'to', 40));
      problem_hint := CASE v_channel WHEN 'email' THEN 'Use an address such as ada@example.com.'
                                     WHEN 'push' THEN 'Use the FCM registration token of the device.'
                                     ELSE 'Use E.164 with country code, e.g. +14155550123.' END;
      RETURN;
    END IF;
  ELSIF NOT p_has_contact THEN
    problem_code := 'invalid_to';
    problem_detail := v_where || '"to" is required and must be a string.';
    problem_hint := 'Or name a "contact_id": its address for the channel is used.';
    RETURN;
  END IF;

  -- The content. A WhatsApp template: its name, language and parameters; the body, if
  -- none is given, is what the template was called with (for reading and dedup).
  IF p_step ? 'template' AND jsonb_typeof(p_step -> 'template') <> 'null' THEN
    IF v_channel <> 'whatsapp' THEN
      problem_code := 'invalid_field';
      problem_detail := format('%s"template" is for whatsapp, not %s.', v_where, v_channel);
      RETURN;
    ELSIF jsonb_typeof(p_step -> 'template') <> 'object'
       OR EXISTS (SELECT 1 FROM jsonb_object_keys(p_step -> 'template') k WHERE k NOT IN ('name', 'language', 'parameters'))
       OR coalesce(p_step #>> '{template,name}', '') !~ '^[a-z0-9_]+$' OR length(p_step #>> '{template,name}') > 512
       OR coalesce(p_step #>> '{template,language}', '') !~ '^[a-z]{2,3}(_[A-Z]{2})?$'
       OR (p_step -> 'template' ? 'parameters'
           AND (jsonb_typeof(p_step #> '{template,parameters}') <> 'array'
                OR jsonb_array_length(p_step #> '{template,parameters}') > 20
                OR EXISTS (SELECT 1 FROM jsonb_array_elements(p_step #> '{template,parameters}') x
                            WHERE jsonb_typeof(x) <> 'string' OR length(x #>> '{}') NOT BETWEEN 1 AND 1024))) THEN
      problem_code := 'invalid_template';
      problem_detail := v_where || '"template" is {"name", "language", "parameters"?}.';
      problem_hint := 'name: the approved template''s name (a-z, 0-9, _); language: its code (en, en_US); '
                      'parameters: up to 20 non-empty strings for its {{1}}, {{2}}...';
      RETURN;
    END IF;
    IF NOT p_step ? 'body' THEN
      p_step := p_step || jsonb_build_object('body', format('[template %s/%s]%s', p_step #>> '{template,name}',
        p_step #>> '{template,language}',
        coalesce(' ' || (SELECT string_agg(x, ' | ' ORDER BY n)
                           FROM jsonb_array_elements_text(p_step #> '{template,parameters}') WITH ORDINALITY t(x, n)), '')));
    END IF;
  END IF;
  IF jsonb_typeof(p_step -> 'body') IS DISTINCT FROM 'string' THEN
    problem_code := 'invalid_body'; problem_detail := v_where || '"body" is required and must be a string.';
    RETURN;
  END IF;
  v_body := p_step ->> 'body';
  v_max := CASE v_channel WHEN 'sms' THEN 1600 WHEN 'whatsapp' THEN 4096 WHEN 'push' THEN 4000 ELSE 200000 END;
  IF v_body ~ '^\s*$' THEN
    problem_code := 'empty_body'; problem_detail := v_where || '"body" is empty.';
    RETURN;
  ELSIF length(v_body) > v_max THEN
    problem_code := 'body_too_long';
    problem_detail := format('%s"body" has %s characters; %s takes at most %s.', v_where, length(v_body),
                             CASE v_channel WHEN 'sms' THEN 'an SMS' WHEN 'whatsapp' THEN 'a WhatsApp message'
                                            WHEN 'push' THEN 'a push notification' ELSE 'an email' END, v_max);
    problem_hint := CASE v_channel WHEN 'sms' THEN 'Shorten the message (Twilio concatenates at most 1600 characters).' END;
    RETURN;
  END IF;
  IF v_channel = 'email' THEN
    IF jsonb_typeof(p_step -> 'subject') IS DISTINCT FROM 'string' OR btrim(p_step ->> 'subject') = '' THEN
      problem_code := 'invalid_subject'; problem_detail := v_where || 'An email needs a "subject" (a string).';
      RETURN;
    ELSIF length(p_step ->> 'subject') > 998 OR p_step ->> 'subject' ~ '[\r\n]' THEN
      problem_code := 'invalid_subject';
      problem_detail := v_where || '"subject" is one line of at most 998 characters.';
      RETURN;
    END IF;
    IF p_step ? 'html' AND (jsonb_typeof(p_step -> 'html') <> 'string' OR length(p_step ->> 'html') > 500000) THEN
      problem_code := 'invalid_html'; problem_detail := v_where || '"html" is a string of at most 500,000 characters.';
      RETURN;
    END IF;
  ELSIF p_step ?| ARRAY['subject', 'html'] THEN
    problem_code := 'invalid_field';
    problem_detail := format('%s"subject" and "html" are for email, not %s.', v_where, v_channel);
    RETURN;
  END IF;
  IF v_channel = 'push' THEN
    IF p_step ? 'title' AND (jsonb_typeof(p_step -> 'title') <> 'string' OR length(p_step ->> 'title') > 200) THEN
      problem_code := 'invalid_title'; problem_detail := v_where || '"title" is a string of at most 200 characters.';
      RETURN;
    END IF;
    IF p_step ? 'data' AND (jsonb_typeof(p_step -> 'data') <> 'object'
        OR EXISTS (SELECT 1 FROM jsonb_each(p_step -> 'data') d WHERE jsonb_typeof(d.value) <> 'string')
        OR octet_length((p_step -> 'data')::text) > 4000) THEN
      problem_code := 'invalid_data';
      problem_detail := v_where || '"data" is an object of string values, at most 4,000 bytes.';
      problem_hint := 'FCM takes string values only.';
      RETURN;
    END IF;
  ELSIF p_step ?| ARRAY['title', 'data'] THEN
    problem_code := 'invalid_field';
    problem_detail := format('%s"title" and "data" are for push, not %s.', v_where, v_channel);
    RETURN;
  END IF;

  -- The sender: given, or the tenant's default for the channel (push has none).
  IF p_step ? 'from' AND jsonb_typeof(p_step -> 'from') <> 'null' THEN
    IF jsonb_typeof(p_step -> 'from') <> 'string' OR v_channel = 'push' THEN
      problem_code := 'invalid_from';
      problem_detail := v_where || CASE WHEN v_channel = 'push' THEN 'A push has no "from".'
                                        ELSE '"from" must be a string.' END;
      RETURN;
    END IF;
    v_from := CASE WHEN v_channel = 'email'
                   THEN CASE WHEN length(p_step ->> 'from') <= 320 AND p_step ->> 'from' ~ '@[^@\s>]+\.[^@\s>]+>?\s*$'
                             AND p_step ->> 'from' !~ '[\r\n]' THEN btrim(p_step ->> 'from') END
                   ELSE CASE WHEN p_step ->> 'from' ~ '^\+[1-9][0-9]{6,14}$' THEN p_step ->> 'from' END END;
    IF v_from IS NULL THEN
      problem_code := 'invalid_from';
      problem_detail := v_where || CASE WHEN v_channel = 'email' THEN '"from" is not an email address.'
                                        ELSE '"from" is not a phone number.' END;
      problem_hint := CASE WHEN v_channel = 'email' THEN 'Use one of your verified senders, e.g. Acme <hello@acme.example>.'
                           ELSE 'Use one of your E.164 sender numbers.' END;
      RETURN;
    END IF;
  ELSIF v_channel <> 'push' THEN
    v_from := p_defaults ->> v_channel;
    IF v_from IS NULL AND v_channel IN ('sms', 'email') THEN
      problem_code := 'missing_from';
      problem_detail := format('%sNo "from" given and the tenant has no default %ssender.', v_where,
                               CASE WHEN v_channel = 'sms' THEN '' ELSE v_channel || ' ' END);
      problem_hint := format('Pass "from" or set the tenant''s default_%s_from.', v_channel);
      RETURN;
    END IF;
  END IF;

  -- How long the step waits for a final receipt before the cascade moves on.
  IF p_step ? 'timeout_seconds' AND jsonb_typeof(p_step -> 'timeout_seconds') <> 'null' THEN
    IF jsonb_typeof(p_step -> 'timeout_seconds') <> 'number' THEN
      problem_code := 'invalid_timeout'; problem_detail := v_where || '"timeout_seconds" must be a number.';
      RETURN;
    END IF;
    v_timeout := (p_step ->> 'timeout_seconds')::numeric;
    IF v_timeout <> trunc(v_timeout) OR v_timeout NOT BETWEEN 1 AND 604800 THEN
      problem_code := 'invalid_timeout';
      problem_detail := v_where || '"timeout_seconds" is a whole number of seconds from 1 to 604800 (7 days).';
      RETURN;
    END IF;
  ELSE
    v_timeout := (p_defaults #>> ARRAY['timeouts', v_channel])::numeric;
  END IF;

  step := jsonb_build_object(
    'channel', v_channel, 'to', v_to, 'from', v_from, 'timeout_seconds', v_timeout::int,
    'content', jsonb_strip_nulls(jsonb_build_object(
      'body', v_body, 'subject', p_step ->> 'subject', 'html', p_step ->> 'html',
      'title', p_step ->> 'title', 'data', p_step -> 'data',
      'template', CASE WHEN jsonb_typeof(p_step -> 'template') = 'object' THEN jsonb_strip_nulls(jsonb_build_object(
                    'name', p_step #>> '{template,name}', 'language', p_step #>> '{template,language}',
                    'parameters', p_step #> '{template,parameters}')) END)));
  problem_status := NULL;
END
$$;
COMMENT ON FUNCTION private.validate_step(jsonb, int, jsonb, boolean) IS
  'Validates one step of a message (channel, recipient, content, sender, timeout): the normalized step or a problem.';

CREATE OR REPLACE FUNCTION private.validate_message(
  p_request jsonb, p_default_from text, p_internal boolean DEFAULT false, p_defaults jsonb DEFAULT '{}',
  OUT to_address text, OUT from_address text, OUT body text,
  OUT channel text, OUT vertical text, OUT category text,
  OUT problem_status int, OUT problem_code text, OUT problem_detail text, OUT problem_hint text,
  OUT steps jsonb, OUT contact_id uuid)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  step_fields constant text[] := ARRAY['channel', 'to', 'from', 'body', 'subject', 'html', 'title', 'data',
                                       'template', 'timeout_seconds'];
  v_defaults jsonb := coalesce(p_defaults, '{}') || jsonb_strip_nulls(jsonb_build_object('sms', p_default_from));
  v_unknown text;
  v_raw     jsonb;
  v_step    record;
  v_n       int := 0;
BEGIN
  problem_status := 422;
  IF p_request IS NULL OR jsonb_typeof(p_request) <> 'object' THEN
    problem_code := 'invalid_request'; problem_detail := 'A message must be a JSON object.';
    RETURN;
  END IF;
  SELECT string_agg(k, ', ' ORDER BY k) INTO v_unknown
    FROM jsonb_object_keys(p_request) k
   WHERE k <> ALL (step_fields || ARRAY['vertical', 'category', 'channels', 'contact_id']);
  IF v_unknown IS NOT NULL THEN
    problem_code := 'unknown_field'; problem_detail := format('Unknown field(s): %s.', v_unknown);
    problem_hint := 'A message takes "to", "body" and optionally "from", "channel", "vertical", "category" '
                    '(or "channels": [steps] and "contact_id").';
    RETURN;
  END IF;
  vertical := p_request ->> 'vertical';
  IF vertical IS NOT NULL AND vertical !~ '^[a-z0-9][a-z0-9_-]{0,63}$' THEN
    problem_code := 'invalid_vertical';
    problem_detail := '"vertical" takes lower-case letters, digits, _ and -, at most 64 (e.g. solar).';
    vertical := NULL;
    RETURN;
  END IF;
  category := p_request ->> 'category';   -- NULL: the tenant's default (private.accept_messages)
  -- 'compliance' (keyword replies, exempt from consent) is Hermes's own: never a caller's.
  IF category IS NOT NULL AND category NOT IN ('marketing', 'transactional')
     AND NOT (p_internal AND category = 'compliance') THEN
    problem_code := 'invalid_category';
    problem_detail := '"category" must be marketing (the default) or transactional.';
    vertical := NULL; category := NULL;
    RETURN;
  END IF;
  IF p_request ? 'contact_id' THEN
    IF p_request ->> 'contact_id' !~* '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$'
       OR jsonb_typeof(p_request -> 'contact_id') <> 'string' THEN
      problem_code := 'invalid_contact_id'; problem_detail := '"contact_id" must be the id (a UUID) of a contact.';
      vertical := NULL; category := NULL;
      RETURN;
    END IF;
    contact_id := (p_request ->> 'contact_id')::uuid;
  END IF;

  -- The steps as given: the cascade's list, or the one channel of the message (a
  -- message to a contact that names none: one step per channel of the tenant's order).
  IF p_request ? 'channels' THEN
    IF p_request ?| step_fields THEN
      problem_code := 'conflicting_fields';
      problem_detail := format('"channels" gives each step''s fields; %s belong in the steps.',
                               (SELECT string_agg(format('"%s"', k), ', ' ORDER BY k)
                                  FROM jsonb_object_keys(p_request) k WHERE k = ANY (step_fields)));
      vertical := NULL; category := NULL; contact_id := NULL;
      RETURN;
    ELSIF jsonb_typeof(p_request -> 'channels') <> 'array' OR jsonb_array_length(p_request -> 'channels') NOT BETWEEN 1 AND 5 THEN
      problem_code := 'invalid_channels';
      problem_detail := '"channels" is a list of 1 to 5 steps, in the order to try them.';
      vertical := NULL; category := NULL; contact_id := NULL;
      RETURN;
    END IF;
    v_raw := p_request -> 'channels';
  ELSIF contact_id IS NOT NULL AND NOT p_request ? 'channel' AND NOT p_request ? 'to' THEN
    SELECT jsonb_agg(p_request - 'vertical' - 'category' - 'contact_id' || jsonb_build_object('channel', c) ORDER BY n)
      INTO v_raw
      FROM jsonb_array_elements_text(coalesce(v_defaults -> 'channels', '["sms"]')) WITH ORDINALITY AS x(c, n);
    -- The message's content serves every channel of the order: what one channel does
    -- not take is left out of its step.
    v_raw := (SELECT jsonb_agg(CASE s ->> 'channel'
                                 WHEN 'email' THEN s - 'title' - 'data' - 'template'
                                 WHEN 'push' THEN s - 'subject' - 'html' - 'template'
                                 WHEN 'whatsapp' THEN s - 'title' - 'data' - 'subject' - 'html'
                                 ELSE s - 'title' - 'data' - 'subject' - 'html' - 'template' END ORDER BY n)
                FROM jsonb_array_elements(v_raw) WITH ORDINALITY AS x(s, n));
  ELSE
    v_raw := jsonb_build_array(p_request - 'vertical' - 'category' - 'contact_id');
  END IF;

  steps := '[]';
  FOR v_step IN
    SELECT v.* FROM jsonb_array_elements(v_raw) WITH ORDINALITY AS x(s, n)
     CROSS JOIN LATERAL private.validate_step(x.s, CASE WHEN p_request ? 'channels' THEN x.n::int END,
                                              v_defaults, contact_id IS NOT NULL) v
     ORDER BY x.n
  LOOP
    v_n := v_n + 1;
    IF v_step.problem_code IS NOT NULL THEN
      problem_status := v_step.problem_status; problem_code := v_step.problem_code;
      problem_detail := v_step.problem_detail; problem_hint := v_step.problem_hint;
      steps := NULL; vertical := NULL; category := NULL; contact_id := NULL;
      RETURN;
    END IF;
    steps := steps || jsonb_build_array(v_step.step);
  END LOOP;

  to_address := steps #>> '{0,to}';
  from_address := steps #>> '{0,from}';
  body := steps #>> '{0,content,body}';
  channel := steps #>> '{0,channel}';
  problem_status := NULL;
END
$$;
COMMENT ON FUNCTION private.validate_message(jsonb, text, boolean, jsonb) IS
  'Validates and normalizes one message request (one channel or a cascade of steps); the fields or a problem.';
