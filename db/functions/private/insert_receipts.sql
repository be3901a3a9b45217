-- Appends receipts to the inbox (app.receipts) and queues the new ones for
-- app.apply_receipts. p_receipts = [{"attempt_id", "provider", "provider_message_id",
-- "provider_status", "error_code"?, "error_message"?, "payload"?}, ...]. A receipt
-- already stored (same provider, provider message id and status) is skipped: that is
-- the deduplication. Receipts for attempts that do not exist are skipped too (the
-- callers check existence where it must be an error). Returns how many were new.
CREATE OR REPLACE FUNCTION private.insert_receipts(p_source text, p_receipts jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE  -- not sql: PostgreSQL < 18 plans a SQL function's body on every call
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_n bigint;
BEGIN
  WITH incoming AS (
    SELECT r.*, private.uuid7_time(r.attempt_id) AS message_created_at, e.n
      FROM jsonb_array_elements(p_receipts) WITH ORDINALITY AS e(item, n)
     CROSS JOIN LATERAL jsonb_to_record(e.item) AS r(attempt_id uuid, provider text, provider_message_id text,
                                                    provider_status text, error_code text,
                                                    error_message text, payload jsonb)
     WHERE r.attempt_id IS NOT NULL AND r.provider_message_id <> '' AND r.provider_status <> ''
  ), stored AS (
    INSERT INTO app.receipts (message_created_at, attempt_id, tenant_id, provider, provider_message_id,
                              provider_status, error_code, error_message, source, payload)
    SELECT i.message_created_at, i.attempt_id, a.tenant_id, i.provider, i.provider_message_id,
           i.provider_status, nullif(i.error_code, ''), nullif(i.error_message, ''), p_source,
           coalesce(i.payload, '{}')
      FROM incoming i
     -- LATERAL: a primary-key lookup per receipt, whatever the planner guesses of the array.
     CROSS JOIN LATERAL (SELECT x.tenant_id FROM app.message_attempts x
                          WHERE x.id = i.attempt_id AND x.message_created_at = i.message_created_at) a
     ORDER BY i.n   -- ids in the given order: 'first terminal wins' follows it
    ON CONFLICT (provider, provider_message_id, provider_status, message_created_at) DO NOTHING
    RETURNING id, message_created_at
  ), queued AS (
    INSERT INTO private.receipt_queue (receipt_id, message_created_at)
    SELECT id, message_created_at FROM stored
  )
  SELECT count(*) INTO v_n FROM stored;
  RETURN v_n;
END
$$;
COMMENT ON FUNCTION private.insert_receipts(text, jsonb) IS
  'Appends receipts to the inbox, deduplicated on (provider, provider message id, status), and queues the new ones.';
