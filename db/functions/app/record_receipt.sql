-- A provider status callback (delivery receipt), already signature-checked by the
-- API. The attempt id comes from the callback URL Hermes gave the provider. One cheap
-- insert into the receipt inbox, acknowledged at once: no lock on the attempt, so the
-- callbacks of one attempt never wait on each other or on its hand-off.
-- app.apply_receipts applies it soon after (see there for the guarantees: stored once
-- per (provider, provider message id, status) -- never deduplicated on the message id
-- alone --, monotonic, first terminal wins, records an unrecorded hand-off).
-- Returns {duplicate, queued}: duplicate when that status of that provider message
-- was already in the inbox. An attempt that does not exist is HM404.
CREATE OR REPLACE FUNCTION app.record_receipt(
  p_provider text, p_attempt_id uuid, p_provider_message_id text, p_provider_status text,
  p_error_code text DEFAULT NULL, p_error_message text DEFAULT NULL, p_payload jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_created timestamptz := private.uuid7_time(p_attempt_id);
  v_tenant  uuid;
  v_id      bigint;
BEGIN
  IF p_provider IS DISTINCT FROM 'twilio' THEN
    PERFORM private.raise_problem(422, 'unknown_provider', format('Unknown provider %s.', p_provider));
  END IF;
  IF coalesce(p_provider_message_id, '') = '' OR coalesce(p_provider_status, '') = '' THEN
    PERFORM private.raise_problem(422, 'invalid_receipt', 'A receipt needs the provider message id and status.');
  END IF;
  SELECT tenant_id INTO v_tenant FROM app.message_attempts
   WHERE id = p_attempt_id AND message_created_at = v_created;
  IF NOT FOUND THEN
    PERFORM private.raise_problem(404, 'attempt_not_found', 'No such attempt.');
  END IF;
  INSERT INTO app.receipts (message_created_at, attempt_id, tenant_id, provider, provider_message_id,
                            provider_status, error_code, error_message, source, payload)
  VALUES (v_created, p_attempt_id, v_tenant, p_provider, p_provider_message_id, p_provider_status,
          nullif(p_error_code, ''), nullif(p_error_message, ''), 'callback', coalesce(p_payload, '{}'))
  ON CONFLICT (provider, provider_message_id, provider_status, message_created_at) DO NOTHING
  RETURNING id INTO v_id;
  IF v_id IS NULL THEN
    RETURN jsonb_build_object('duplicate', true, 'queued', false);
  END IF;
  INSERT INTO private.receipt_queue (receipt_id, message_created_at) VALUES (v_id, v_created);
  RETURN jsonb_build_object('duplicate', false, 'queued', true);
END
$$;
COMMENT ON FUNCTION app.record_receipt(text, uuid, text, text, text, text, jsonb) IS
  'Appends a provider status callback to the receipt inbox (deduplicated); app.apply_receipts applies it.';
GRANT EXECUTE ON FUNCTION app.record_receipt(text, uuid, text, text, text, text, jsonb) TO hermes_api;
