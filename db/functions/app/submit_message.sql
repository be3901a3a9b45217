-- Accepts an SMS for sending. One transaction: idempotency, validation, the message,
-- its first attempt, its 'accepted' event, the audit row and the send job (outbox),
-- through the same set-based intake as the batch (private.accept_messages).
-- p_request is the JSON body: {"to": ..., "body": ..., "from": optional}.
-- Returns {"message": {...}, "replayed": bool}. A reused Idempotency-Key with the same
-- request replays the first response; with another request it is HM409.
CREATE OR REPLACE FUNCTION private.submit_message(
  p_tenant_id uuid, p_api_key_id uuid, p_request jsonb, p_idempotency_key text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_tenant app.tenants;
  v_result jsonb;
BEGIN
  v_tenant := private.active_tenant(p_tenant_id);
  IF p_idempotency_key IS NOT NULL AND length(p_idempotency_key) NOT BETWEEN 1 AND 255 THEN
    PERFORM private.raise_problem(422, 'invalid_idempotency_key', 'Idempotency-Key must be 1 to 255 characters.');
  END IF;

  v_result := private.accept_messages(p_tenant_id, v_tenant.default_sms_from, p_api_key_id,
    jsonb_build_array(jsonb_build_object('request', p_request, 'key', p_idempotency_key))) -> 0;
  IF v_result ? 'problem' THEN
    PERFORM private.raise_problem((v_result #>> '{problem,status}')::int, v_result #>> '{problem,code}',
                                  v_result #>> '{problem,detail}', v_result #>> '{problem,hint}');
  END IF;
  IF (v_result ->> 'status')::int = 201 THEN
    PERFORM private.audit(p_tenant_id, p_api_key_id, 'message.submit', v_result #>> '{message,id}',
                          jsonb_build_object('idempotency_key', p_idempotency_key));
  END IF;
  RETURN jsonb_build_object('message', v_result -> 'message',
                            'replayed', coalesce((v_result ->> 'replayed')::boolean, false));
END
$$;
COMMENT ON FUNCTION private.submit_message(uuid, uuid, jsonb, text) IS
  'Accepts an SMS for a tenant: validates, stores message + attempt + event, enqueues send_sms; idempotent per key.';

-- POST /v1/messages: the key (messages:write) names the tenant and the actor; one call,
-- one transaction, authorization included.
CREATE OR REPLACE FUNCTION app.submit_message(
  p_token text, p_request jsonb, p_idempotency_key text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_who private.principal := private.authorize(p_token, 'messages:write');
BEGIN
  RETURN private.submit_message(v_who.tenant_id, v_who.api_key_id, p_request, p_idempotency_key);
END
$$;
COMMENT ON FUNCTION app.submit_message(text, jsonb, text) IS
  'Accepts an SMS for the key''s tenant (messages:write); see private.submit_message.';
GRANT EXECUTE ON FUNCTION app.submit_message(text, jsonb, text) TO hermes_api;

-- Accepts a batch of up to 1,000 SMS in one transaction:
--   p_messages = [{"to", "body", "from"?, "idempotency_key"?}, ...]
-- Each item is answered on its own (see private.accept_messages): valid items are
-- accepted even when others are invalid; an item's idempotency_key replays its first
-- result. More than 1,000 items is HM413 (batch_too_large), nothing accepted. One
-- audit row for the batch. Returns {"results": [...], "accepted", "replayed", "rejected"}.
CREATE OR REPLACE FUNCTION private.submit_messages(p_tenant_id uuid, p_api_key_id uuid, p_messages jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  max_items constant int := 1000;
  v_tenant  app.tenants;
  v_results jsonb;
  v_counts  record;
BEGIN
  v_tenant := private.active_tenant(p_tenant_id);
  IF jsonb_typeof(p_messages) IS DISTINCT FROM 'array' THEN
    PERFORM private.raise_problem(422, 'invalid_request', '"messages" must be a JSON array.');
  ELSIF jsonb_array_length(p_messages) = 0 THEN
    PERFORM private.raise_problem(422, 'empty_batch', '"messages" is empty.');
  ELSIF jsonb_array_length(p_messages) > max_items THEN
    PERFORM private.raise_problem(413, 'batch_too_large',
      format('A batch takes at most %s messages; this one has %s.', max_items, jsonb_array_length(p_messages)),
      'Split the batch.');
  END IF;

  v_results := private.accept_messages(p_tenant_id, v_tenant.default_sms_from, p_api_key_id,
    (SELECT jsonb_agg(jsonb_build_object(
              'request', CASE WHEN jsonb_typeof(m) = 'object' THEN m - 'idempotency_key' ELSE m END,
              'key', CASE WHEN jsonb_typeof(m) = 'object' THEN m -> 'idempotency_key' END) ORDER BY n)
       FROM jsonb_array_elements(p_messages) WITH ORDINALITY e(m, n)));
  SELECT count(*) FILTER (WHERE (r ->> 'status')::int = 201) AS accepted,
         count(*) FILTER (WHERE (r ->> 'status')::int = 200) AS replayed,
         count(*) FILTER (WHERE (r ->> 'status')::int >= 400) AS rejected
    INTO v_counts FROM jsonb_array_elements(v_results) r;
  IF v_counts.accepted > 0 THEN
    PERFORM private.audit(p_tenant_id, p_api_key_id, 'message.submit_batch', NULL,
                          jsonb_build_object('accepted', v_counts.accepted, 'replayed', v_counts.replayed,
                                             'rejected', v_counts.rejected));
  END IF;
  RETURN jsonb_build_object('results', v_results, 'accepted', v_counts.accepted,
                            'replayed', v_counts.replayed, 'rejected', v_counts.rejected);
END
$$;
COMMENT ON FUNCTION private.submit_messages(uuid, uuid, jsonb) IS
  'Accepts up to 1,000 SMS for a tenant in one transaction, answering per item (accepted, replayed or a problem).';

-- POST /v1/messages/batch: private.submit_messages for the key's tenant (messages:write).
CREATE OR REPLACE FUNCTION app.submit_messages(p_token text, p_messages jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_who private.principal := private.authorize(p_token, 'messages:write');
BEGIN
  RETURN private.submit_messages(v_who.tenant_id, v_who.api_key_id, p_messages);
END
$$;
COMMENT ON FUNCTION app.submit_messages(text, jsonb) IS
  'Accepts up to 1,000 SMS for the key''s tenant (messages:write); see private.submit_messages.';
GRANT EXECUTE ON FUNCTION app.submit_messages(text, jsonb) TO hermes_api;

-- POST /v1/messages, gathered: the command API gathers the single POSTs of one key that
-- arrive within a few milliseconds and submits them in one call -- one transaction, one
-- round trip, one pgqueuer NOTIFY for all of them. p_items = [{"request", "key"}, ...]
-- (at most 1,000). Each item is answered as app.submit_message would answer it alone --
-- {index, status 201|200, message, replayed?} or {index, status, problem}, returned,
-- not raised -- and each accepted one is audited as its own 'message.submit'.
CREATE OR REPLACE FUNCTION app.submit_gathered(p_token text, p_items jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_who     private.principal := private.authorize(p_token, 'messages:write');
  v_tenant  app.tenants := private.active_tenant(v_who.tenant_id);
  v_results jsonb;
BEGIN
  IF jsonb_typeof(p_items) IS DISTINCT FROM 'array' OR jsonb_array_length(p_items) NOT BETWEEN 1 AND 1000 THEN
    PERFORM private.raise_problem(422, 'invalid_request', 'p_items must be an array of 1 to 1000 items.');
  END IF;
  v_results := private.accept_messages(v_who.tenant_id, v_tenant.default_sms_from, v_who.api_key_id, p_items);
  INSERT INTO app.audit_log (tenant_id, api_key_id, action, target_id, details)
  SELECT v_who.tenant_id, v_who.api_key_id, 'message.submit', r #>> '{message,id}',
         jsonb_build_object('idempotency_key', p_items -> (r ->> 'index')::int -> 'key')
    FROM jsonb_array_elements(v_results) r
   WHERE (r ->> 'status')::int = 201;
  RETURN v_results;
END
$$;
COMMENT ON FUNCTION app.submit_gathered(text, jsonb) IS
  'Single POSTs of one key gathered into one call: each item answered and audited as app.submit_message would.';
GRANT EXECUTE ON FUNCTION app.submit_gathered(text, jsonb) TO hermes_api;
