-- Appends receipts to the inbox (app.receipts) and queues the new ones for
-- app.apply_receipts, in one statement for the whole set. p_receipts = [{"attempt_id",
-- "provider", "provider_message_id", "provider_status", "error_code"?,
-- "error_message"?, "payload"?}, ...]. A receipt already stored (same provider,
-- provider message id and status) is skipped: that is the deduplication; so is one
-- for an attempt that does not exist.
-- A callback (p_source 'callback') is stored only for an attempt of its provider and,
-- at a provider that signs callbacks per account (private.providers.account_signed),
-- of the account whose secret verified it ("account_id": a tenant's account; absent:
-- the deployment's) -- the attempt id alone binds nothing: it travels in the clear.
-- Any other is refused, not stored and never applied. Returns one outcome per element,
-- in order: [{"index", "outcome": "queued" | "duplicate" | "attempt_not_found" | "refused"}].
-- A receipt for an erased attempt (private.erase_addresses: its content says
-- "redacted") is stored without its payload and error text: they may quote the
-- erased address.
CREATE OR REPLACE FUNCTION private.insert_receipts(p_source text, p_receipts jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE  -- not sql: PostgreSQL < 18 plans a SQL function's body on every call
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_outcomes jsonb;
BEGIN
  WITH incoming AS (
    SELECT r.*, private.uuid7_time(r.attempt_id) AS message_created_at, e.n
      FROM jsonb_array_elements(coalesce(p_receipts, '[]')) WITH ORDINALITY AS e(item, n)
     CROSS JOIN LATERAL jsonb_to_record(e.item) AS r(attempt_id uuid, provider text, provider_message_id text,
                                                    provider_status text, error_code text,
                                                    error_message text, payload jsonb, account_id uuid)
  ), found AS (
    SELECT i.*, a.tenant_id, a.erased,
           p_source = 'callback'
             AND (a.provider IS DISTINCT FROM i.provider
                  OR (coalesce((SELECT p.account_signed FROM private.providers p WHERE p.provider = a.provider), true)
                      AND a.provider_account_id IS DISTINCT FROM i.account_id)) AS refused
      FROM incoming i
     -- LATERAL ... LIMIT 1 (never pulled up into a hash join): a primary-key probe per
     -- receipt, whatever the planner guesses of the array.
     CROSS JOIN LATERAL (SELECT x.tenant_id, x.provider, x.provider_account_id, x.content ? 'redacted' AS erased
                           FROM app.message_attempts x
                          WHERE x.id = i.attempt_id AND x.message_created_at = i.message_created_at
                         LIMIT 1) a
     WHERE i.provider_message_id <> '' AND i.provider_status <> ''
  ), known AS (
    SELECT * FROM found WHERE NOT refused
  ), stored AS (
    INSERT INTO app.receipts (message_created_at, attempt_id, tenant_id, provider, provider_message_id,
                              provider_status, error_code, error_message, source, payload, account_id)
    SELECT k.message_created_at, k.attempt_id, k.tenant_id, k.provider, k.provider_message_id,
           k.provider_status, nullif(k.error_code, ''),
           CASE WHEN NOT k.erased THEN nullif(k.error_message, '') END, p_source,
           CASE WHEN k.erased THEN '{"redacted": "erasure"}' ELSE coalesce(k.payload, '{}') END, k.account_id
      FROM known k
     ORDER BY k.n   -- ids in the given order: 'first terminal wins' follows it
    ON CONFLICT (provider, provider_message_id, provider_status, message_created_at) DO NOTHING
    RETURNING id, message_created_at, provider, provider_message_id, provider_status
  ), queued AS (
    INSERT INTO private.receipt_queue (receipt_id, message_created_at)
    SELECT id, message_created_at FROM stored
  ), firsts AS (
    -- The same status twice in one call: the first element is the one stored.
    SELECT DISTINCT ON (k.provider, k.provider_message_id, k.provider_status) k.n, s.id
      FROM known k
      JOIN stored s ON s.provider = k.provider AND s.provider_message_id = k.provider_message_id
                   AND s.provider_status = k.provider_status
                   AND s.message_created_at = k.message_created_at
     ORDER BY k.provider, k.provider_message_id, k.provider_status, k.n
  )
  SELECT coalesce(jsonb_agg(jsonb_build_object(
           'index', i.n - 1,
           'outcome', CASE WHEN f.n IS NOT NULL THEN 'queued'
                           WHEN r.refused THEN 'refused'
                           WHEN k.n IS NOT NULL THEN 'duplicate'
                           ELSE 'attempt_not_found' END) ORDER BY i.n), '[]')
    INTO v_outcomes
    FROM incoming i
    LEFT JOIN found r ON r.n = i.n
    LEFT JOIN known k ON k.n = i.n
    LEFT JOIN firsts f ON f.n = i.n;
  RETURN v_outcomes;
END
$$;
COMMENT ON FUNCTION private.insert_receipts(text, jsonb) IS
  'Appends receipts to the inbox, deduplicated on (provider, provider message id, status), queues the new ones; an outcome per element.';
