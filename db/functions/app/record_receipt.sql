-- Provider status callbacks (delivery receipts), already signature-checked by the
-- API. The attempt id comes from the callback URL Hermes gave the provider. The API
-- gathers the callbacks that arrive within a few milliseconds and appends them to the
-- receipt inbox in one call, acknowledging each once it has committed: no lock on any
-- attempt, so the callbacks of one attempt never wait on each other or on its
-- hand-off. app.apply_receipts applies them soon after (see there for the guarantees:
-- stored once per (provider, provider message id, status) -- never deduplicated on the
-- message id alone --, monotonic, first terminal wins, records an unrecorded hand-off).
-- p_receipts = [{"provider", "attempt_id", "provider_message_id", "provider_status",
-- "error_code"?, "error_message"?, "payload"?, "account_id"?}, ...]: account_id is the
-- tenant provider account whose secret verified the callback (absent: the
-- deployment's). A receipt whose provider or account is not its attempt's is refused
-- (private.insert_receipts): not stored, never applied. Returns one outcome per
-- element, in order: [{"index", "outcome": "queued" | "duplicate" | "attempt_not_found"
-- | "refused"}].
CREATE OR REPLACE FUNCTION app.record_receipts(p_receipts jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_bad text;
BEGIN
  IF jsonb_typeof(p_receipts) IS DISTINCT FROM 'array' THEN
    PERFORM private.raise_problem(422, 'invalid_receipt', 'Receipts are a JSON array.');
  END IF;
  SELECT r ->> 'provider' INTO v_bad FROM jsonb_array_elements(p_receipts) r
   WHERE (r ->> 'provider') IS NULL
      OR NOT EXISTS (SELECT 1 FROM private.providers p WHERE p.provider = r ->> 'provider')
   LIMIT 1;
  IF FOUND THEN
    PERFORM private.raise_problem(422, 'unknown_provider', format('Unknown provider %s.', v_bad));
  END IF;
  IF EXISTS (SELECT 1 FROM jsonb_array_elements(p_receipts) r
              WHERE coalesce(r ->> 'provider_message_id', '') = '' OR coalesce(r ->> 'provider_status', '') = '') THEN
    PERFORM private.raise_problem(422, 'invalid_receipt', 'A receipt needs the provider message id and status.');
  END IF;
  RETURN private.insert_receipts('callback', p_receipts);
END
$$;
COMMENT ON FUNCTION app.record_receipts(jsonb) IS
  'Appends provider status callbacks to the receipt inbox (deduplicated); an outcome per receipt.';
GRANT EXECUTE ON FUNCTION app.record_receipts(jsonb) TO hermes_api;

-- One callback (operators, tests): app.record_receipts with one element, verified
-- with the deployment's secret. Returns {duplicate, queued}; an attempt that does not
-- exist is HM404, one of another provider or account HM403 receipt_refused.
CREATE OR REPLACE FUNCTION app.record_receipt(
  p_provider text, p_attempt_id uuid, p_provider_message_id text, p_provider_status text,
  p_error_code text DEFAULT NULL, p_error_message text DEFAULT NULL, p_payload jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_outcome text;
BEGIN
  v_outcome := app.record_receipts(jsonb_build_array(jsonb_build_object(
    'provider', p_provider, 'attempt_id', p_attempt_id, 'provider_message_id', p_provider_message_id,
    'provider_status', p_provider_status, 'error_code', p_error_code, 'error_message', p_error_message,
    'payload', coalesce(p_payload, '{}')))) -> 0 ->> 'outcome';
  IF v_outcome = 'attempt_not_found' THEN
    PERFORM private.raise_problem(404, 'attempt_not_found', 'No such attempt.');
  ELSIF v_outcome = 'refused' THEN
    PERFORM private.raise_problem(403, 'receipt_refused',
      'The attempt was not sent through this provider and account.');
  END IF;
  RETURN jsonb_build_object('duplicate', v_outcome = 'duplicate', 'queued', v_outcome = 'queued');
END
$$;
COMMENT ON FUNCTION app.record_receipt(text, uuid, text, text, text, text, jsonb) IS
  'Appends one provider status callback to the receipt inbox (deduplicated); app.apply_receipts applies it.';
GRANT EXECUTE ON FUNCTION app.record_receipt(text, uuid, text, text, text, text, jsonb) TO hermes_api;
