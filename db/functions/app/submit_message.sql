-- Accepts an SMS for sending. One transaction: idempotency, validation, the message,
-- its first attempt, its 'accepted' event, the audit row and the send job (outbox).
-- p_request is the JSON body: {"to": ..., "body": ..., "from": optional}.
-- Returns {"message": {...}, "replayed": bool}. A reused Idempotency-Key with the same
-- request replays the first response; with another request it is HM409.
CREATE OR REPLACE FUNCTION app.submit_message(
  p_tenant_id uuid, p_api_key_id uuid, p_request jsonb, p_idempotency_key text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_tenant   app.tenants;
  v_hash     bytea;
  v_previous app.idempotency_keys;
  v_unknown  text;
  v_to       text;
  v_from     text;
  v_body     text;
  v_id       uuid;
  v_created  timestamptz;
  v_attempt  uuid;
  v_message  app.messages;
  v_response jsonb;
BEGIN
  SELECT * INTO v_tenant FROM app.tenants WHERE id = p_tenant_id;
  IF NOT FOUND THEN
    PERFORM private.raise_problem(404, 'tenant_not_found', 'No such tenant.');
  ELSIF v_tenant.status <> 'active' THEN
    PERFORM private.raise_problem(403, 'tenant_suspended', 'The tenant is suspended.');
  END IF;

  -- Idempotency first: a replay must not be re-validated against changed state.
  IF p_idempotency_key IS NOT NULL THEN
    IF length(p_idempotency_key) NOT BETWEEN 1 AND 255 THEN
      PERFORM private.raise_problem(422, 'invalid_idempotency_key',
        'Idempotency-Key must be 1 to 255 characters.');
    END IF;
    v_hash := sha256(convert_to(coalesce(p_request, 'null'::jsonb)::text, 'UTF8'));
    INSERT INTO app.idempotency_keys (tenant_id, key, request_hash)
    VALUES (p_tenant_id, p_idempotency_key, v_hash)
    ON CONFLICT (tenant_id, key) DO NOTHING;
    IF NOT FOUND THEN
      -- Someone used the key first; a concurrent first use has committed by now
      -- (the insert above waited for it).
      SELECT * INTO v_previous FROM app.idempotency_keys
       WHERE tenant_id = p_tenant_id AND key = p_idempotency_key;
      IF v_previous.request_hash <> v_hash THEN
        PERFORM private.raise_problem(409, 'idempotency_key_reused',
          'This Idempotency-Key was used with a different request.',
          'Use a new key for a new request.');
      END IF;
      RETURN jsonb_build_object('message', v_previous.response, 'replayed', true);
    END IF;
  END IF;

  IF p_request IS NULL OR jsonb_typeof(p_request) <> 'object' THEN
    PERFORM private.raise_problem(422, 'invalid_request', 'The request body must be a JSON object.');
  END IF;
  SELECT string_agg(k, ', ' ORDER BY k) INTO v_unknown
    FROM jsonb_object_keys(p_request) k WHERE k NOT IN ('to', 'body', 'from');
  IF v_unknown IS NOT NULL THEN
    PERFORM private.raise_problem(422, 'unknown_field', format('Unknown field(s): %s.', v_unknown),
      'A message takes "to", "body" and optionally "from".');
  END IF;
  IF jsonb_typeof(p_request -> 'to') IS DISTINCT FROM 'string' THEN
    PERFORM private.raise_problem(422, 'invalid_to', '"to" is required and must be a string.');
  END IF;
  v_to := private.normalize_phone(p_request ->> 'to');
  IF v_to IS NULL THEN
    PERFORM private.raise_problem(422, 'invalid_to', format('"to" is not a phone number: %s.',
      left(p_request ->> 'to', 40)), 'Use E.164 with country code, e.g. +14155550123.');
  END IF;
  IF jsonb_typeof(p_request -> 'body') IS DISTINCT FROM 'string' THEN
    PERFORM private.raise_problem(422, 'invalid_body', '"body" is required and must be a string.');
  END IF;
  v_body := p_request ->> 'body';
  IF v_body ~ '^\s*$' THEN
    PERFORM private.raise_problem(422, 'empty_body', '"body" is empty.');
  ELSIF length(v_body) > 1600 THEN
    PERFORM private.raise_problem(422, 'body_too_long',
      format('"body" has %s characters; an SMS takes at most 1600.', length(v_body)),
      'Shorten the message (Twilio concatenates at most 1600 characters).');
  END IF;
  IF p_request ? 'from' AND jsonb_typeof(p_request -> 'from') <> 'null' THEN
    IF jsonb_typeof(p_request -> 'from') <> 'string' THEN
      PERFORM private.raise_problem(422, 'invalid_from', '"from" must be a string.');
    END IF;
    v_from := private.normalize_phone(p_request ->> 'from');
    IF v_from IS NULL THEN
      PERFORM private.raise_problem(422, 'invalid_from', '"from" is not a phone number.',
        'Use one of your E.164 sender numbers.');
    END IF;
  ELSE
    v_from := v_tenant.default_sms_from;
    IF v_from IS NULL THEN
      PERFORM private.raise_problem(422, 'missing_from', 'No "from" given and the tenant has no default sender.',
        'Pass "from" or set the tenant''s default_sms_from.');
    END IF;
  END IF;

  v_id := private.uuid7();
  v_created := private.uuid7_time(v_id);
  v_attempt := private.uuid7(v_created);

  INSERT INTO app.messages (id, created_at, tenant_id, api_key_id, channel, to_address, from_address,
                            body, status, idempotency_key, updated_at)
  VALUES (v_id, v_created, p_tenant_id, p_api_key_id, 'sms', v_to, v_from, v_body, 'queued',
          p_idempotency_key, v_created)
  RETURNING * INTO v_message;
  INSERT INTO app.message_attempts (id, message_created_at, message_id, tenant_id, attempt_no,
                                    channel, provider)
  VALUES (v_attempt, v_created, v_id, p_tenant_id, 1, 'sms', 'twilio');
  PERFORM private.log_event(v_id, v_created, p_tenant_id, v_attempt, 'accepted', 'queued');
  PERFORM private.enqueue_job('send_sms', jsonb_build_object('attempt_id', v_attempt));
  PERFORM private.audit(p_tenant_id, p_api_key_id, 'message.submit', v_id::text,
                        jsonb_build_object('idempotency_key', p_idempotency_key));

  v_response := private.message_json(v_message);
  IF p_idempotency_key IS NOT NULL THEN
    UPDATE app.idempotency_keys
       SET message_id = v_id, message_created_at = v_created, response = v_response
     WHERE tenant_id = p_tenant_id AND key = p_idempotency_key;
  END IF;
  RETURN jsonb_build_object('message', v_response, 'replayed', false);
END
$$;
COMMENT ON FUNCTION app.submit_message(uuid, uuid, jsonb, text) IS
  'Accepts an SMS: validates, stores message + attempt + event, enqueues send_sms; idempotent per key.';
GRANT EXECUTE ON FUNCTION app.submit_message(uuid, uuid, jsonb, text) TO hermes_api;
