-- What makes a message request valid, in one place for the single and the batch
-- intake: p_request is one message ({"to", "body", "from"?}; the batch's per-item
-- "idempotency_key" is not part of it). Returns the normalized recipient, sender and
-- body, or a problem: HTTP status, machine-readable code, detail and hint. Raises
-- nothing, so a batch can report each invalid item and accept the others.
CREATE OR REPLACE FUNCTION private.validate_message(
  p_request jsonb, p_default_from text,
  OUT to_address text, OUT from_address text, OUT body text,
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
    FROM jsonb_object_keys(p_request) k WHERE k NOT IN ('to', 'body', 'from');
  IF v_unknown IS NOT NULL THEN
    problem_code := 'unknown_field'; problem_detail := format('Unknown field(s): %s.', v_unknown);
    problem_hint := 'A message takes "to", "body" and optionally "from".';
    RETURN;
  END IF;
  IF jsonb_typeof(p_request -> 'to') IS DISTINCT FROM 'string' THEN
    problem_code := 'invalid_to'; problem_detail := '"to" is required and must be a string.';
    RETURN;
  END IF;
  to_address := private.normalize_phone(p_request ->> 'to');
  IF to_address IS NULL THEN
    problem_code := 'invalid_to';
    problem_detail := format('"to" is not a phone number: %s.', left(p_request ->> 'to', 40));
    problem_hint := 'Use E.164 with country code, e.g. +14155550123.';
    RETURN;
  END IF;
  IF jsonb_typeof(p_request -> 'body') IS DISTINCT FROM 'string' THEN
    to_address := NULL;
    problem_code := 'invalid_body'; problem_detail := '"body" is required and must be a string.';
    RETURN;
  END IF;
  body := p_request ->> 'body';
  IF body ~ '^\s*$' THEN
    to_address := NULL; body := NULL;
    problem_code := 'empty_body'; problem_detail := '"body" is empty.';
    RETURN;
  ELSIF length(body) > 1600 THEN
    problem_code := 'body_too_long';
    problem_detail := format('"body" has %s characters; an SMS takes at most 1600.', length(body));
    problem_hint := 'Shorten the message (Twilio concatenates at most 1600 characters).';
    to_address := NULL; body := NULL;
    RETURN;
  END IF;
  IF p_request ? 'from' AND jsonb_typeof(p_request -> 'from') <> 'null' THEN
    IF jsonb_typeof(p_request -> 'from') <> 'string' THEN
      problem_code := 'invalid_from'; problem_detail := '"from" must be a string.';
    ELSE
      from_address := private.normalize_phone(p_request ->> 'from');
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
    RETURN;
  END IF;
  problem_status := NULL;
END
$$;
COMMENT ON FUNCTION private.validate_message(jsonb, text) IS
  'Validates and normalizes one message request; returns the fields or a problem (status, code, detail, hint).';
