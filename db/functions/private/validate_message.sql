-- What makes a message request valid, in one place for the single and the batch
-- intake: p_request is one message ({"to", "body", "from"?, "channel"?, "vertical"?,
-- "category"?}; the batch's per-item "idempotency_key" is not part of it). Returns the
-- recipient, sender, body, channel (sms: the only one so far), vertical and category
-- (NULL when not given: the tenant's default applies), or a problem: HTTP status, machine-readable code, detail and
-- hint. Raises nothing, so a batch can report each invalid item and accept the others.
-- Numbers must be E.164 here: the API reads what people type (national forms with the
-- tenant's default country, tel: URIs, full-width digits) with phonenumbers first.
CREATE OR REPLACE FUNCTION private.validate_message(
  p_request jsonb, p_default_from text, p_internal boolean DEFAULT false,
  OUT to_address text, OUT from_address text, OUT body text,
  OUT channel text, OUT vertical text, OUT category text,
  OUT problem_status int, OUT problem_code text, OUT problem_detail text, OUT problem_hint text)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_unknown text;
BEGIN
  problem_status := 422;
  IF p_request IS NULL OR jsonb_typeof(p_request) <> 'object' THEN
    problem_code := 'invalid_request'; problem_detail := 'A message must be a JSON object.';
    RETURN;
  END IF;
  SELECT string_agg(k, ', ' ORDER BY k) INTO v_unknown
    FROM jsonb_object_keys(p_request) k
   WHERE k NOT IN ('to', 'body', 'from', 'channel', 'vertical', 'category');
  IF v_unknown IS NOT NULL THEN
    problem_code := 'unknown_field'; problem_detail := format('Unknown field(s): %s.', v_unknown);
    problem_hint := 'A message takes "to", "body" and optionally "from", "channel", "vertical", "category".';
    RETURN;
  END IF;
  IF jsonb_typeof(p_request -> 'to') IS DISTINCT FROM 'string' THEN
    problem_code := 'invalid_to'; problem_detail := '"to" is required and must be a string.';
    RETURN;
  END IF;
  channel := coalesce(p_request ->> 'channel', 'sms');
  IF channel <> 'sms' THEN
    problem_code := CASE WHEN channel IN ('email', 'push', 'whatsapp') THEN 'channel_not_supported'
                         ELSE 'invalid_channel' END;
    problem_detail := format('Channel %s is not available; "channel" must be sms.', left(channel, 40));
    channel := NULL;
    RETURN;
  END IF;
  vertical := p_request ->> 'vertical';
  IF vertical IS NOT NULL AND vertical !~ '^[a-z0-9][a-z0-9_-]{0,63}$' THEN
    problem_code := 'invalid_vertical';
    problem_detail := '"vertical" takes lower-case letters, digits, _ and -, at most 64 (e.g. solar).';
    channel := NULL; vertical := NULL;
    RETURN;
  END IF;
  category := p_request ->> 'category';   -- NULL: the tenant's default (private.accept_messages)
  -- 'compliance' (keyword replies, exempt from consent) is Hermes's own: never a caller's.
  IF category IS NOT NULL AND category NOT IN ('marketing', 'transactional')
     AND NOT (p_internal AND category = 'compliance') THEN
    problem_code := 'invalid_category';
    problem_detail := '"category" must be marketing (the default) or transactional.';
    channel := NULL; vertical := NULL; category := NULL;
    RETURN;
  END IF;
  to_address := CASE WHEN p_request ->> 'to' ~ '^\+[1-9][0-9]{6,14}$' THEN p_request ->> 'to' END;
  IF to_address IS NULL THEN
    channel := NULL; vertical := NULL; category := NULL;
    problem_code := 'invalid_to';
    problem_detail := format('"to" is not a phone number: %s.', left(p_request ->> 'to', 40));
    problem_hint := 'Use E.164 with country code, e.g. +14155550123.';
    RETURN;
  END IF;
  IF jsonb_typeof(p_request -> 'body') IS DISTINCT FROM 'string' THEN
    to_address := NULL; channel := NULL; vertical := NULL; category := NULL;
    problem_code := 'invalid_body'; problem_detail := '"body" is required and must be a string.';
    RETURN;
  END IF;
  body := p_request ->> 'body';
  IF body ~ '^\s*$' THEN
    to_address := NULL; body := NULL; channel := NULL; vertical := NULL; category := NULL;
    problem_code := 'empty_body'; problem_detail := '"body" is empty.';
    RETURN;
  ELSIF length(body) > 1600 THEN
    problem_code := 'body_too_long';
    problem_detail := format('"body" has %s characters; an SMS takes at most 1600.', length(body));
    problem_hint := 'Shorten the message (Twilio concatenates at most 1600 characters).';
    to_address := NULL; body := NULL; channel := NULL; vertical := NULL; category := NULL;
    RETURN;
  END IF;
  IF p_request ? 'from' AND jsonb_typeof(p_request -> 'from') <> 'null' THEN
    IF jsonb_typeof(p_request -> 'from') <> 'string' THEN
      problem_code := 'invalid_from'; problem_detail := '"from" must be a string.';
    ELSE
      from_address := CASE WHEN p_request ->> 'from' ~ '^\+[1-9][0-9]{6,14}$' THEN p_request ->> 'from' END;
      IF from_address IS NULL THEN
        problem_code := 'invalid_from'; problem_detail := '"from" is not a phone number.';
        problem_hint := 'Use one of your E.164 sender numbers.';
      END IF;
    END IF;
  ELSE
    from_address := p_default_from;
    IF from_address IS NULL THEN
      problem_code := 'missing_from';
      problem_detail := 'No "from" given and the tenant has no default sender.';
      problem_hint := 'Pass "from" or set the tenant''s default_sms_from.';
    END IF;
  END IF;
  IF problem_code IS NOT NULL THEN
    to_address := NULL; body := NULL; from_address := NULL;
    channel := NULL; vertical := NULL; category := NULL;
    RETURN;
  END IF;
  problem_status := NULL;
END
$$;
COMMENT ON FUNCTION private.validate_message(jsonb, text, boolean) IS
  'Validates and normalizes one message request; returns the fields or a problem (status, code, detail, hint).';
