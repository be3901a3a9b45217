-- MERGE for the import kinds that carry compliance data (#5): they share LAND, PARSE and
-- RECORD with the contact imports and write the compliance stores instead of the
-- identity graph, through the same code as the rest of Hermes.
--   suppression      every valid phone and email of the file onto the list the import
--                    names (mapping.list), through private.record_suppressions (the
--                    address locks, the ledger, the audit), 10,000 addresses a call;
--   contact_history  the legacy system's last contacts (from -> to at observed_at, per
--                    vertical, '*' when unknown) into app.contact_history, the cooldown
--                    store the eligibility check reads; a later contact wins, an older
--                    one changes nothing (re-importing is a no-op).
-- Rows with no address are rejected (no_address), and PARSE rejects a contact-history
-- row without a time of last contact (missing_last_contact), like any import's.

-- The rows PARSE rejected, or that have no address: RECORD's errors; returns how many.
CREATE OR REPLACE FUNCTION private.record_import_rejections(p_import app.imports)
RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
  WITH bad AS (
    INSERT INTO app.import_errors (import_id, row_number, tenant_id, reason, detail)
    SELECT x.import_id, x.row_number, x.tenant_id,
           coalesce(x.rejected, 'no_address'),
           x.rejected_detail
      FROM app.import_extractions x
     WHERE x.import_id = p_import.id AND NOT x.merged
       AND (x.rejected IS NOT NULL OR cardinality(x.phones) + cardinality(x.emails) = 0)
    ON CONFLICT (import_id, row_number) DO NOTHING
    RETURNING 1
  )
  SELECT count(*) FROM bad
$$;

CREATE OR REPLACE FUNCTION private.merge_suppression_import(p_import_id bigint)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_import app.imports;
  v_batch jsonb;
  v_result jsonb;
  v_recorded bigint := 0;
BEGIN
  SELECT * INTO v_import FROM app.imports WHERE id = p_import_id;
  PERFORM private.record_import_rejections(v_import);
  FOR v_batch IN
    SELECT jsonb_agg(a.address ORDER BY a.address)
      FROM (SELECT d.address, (row_number() OVER (ORDER BY d.address) - 1) / 10000 AS batch
              FROM (SELECT DISTINCT v.address
                      FROM app.import_extractions x, unnest(x.phones || x.emails) v(address)
                     WHERE x.import_id = p_import_id AND NOT x.merged AND x.rejected IS NULL) d) a
     GROUP BY a.batch
  LOOP
    v_result := private.record_suppressions(v_import.tenant_id, v_import.api_key_id, 'add',
                                            v_import.mapping->>'list', v_batch,
                                            format('import %s', p_import_id), 'import');
    v_recorded := v_recorded + (v_result->>'recorded')::bigint;
  END LOOP;
  UPDATE app.import_extractions SET merged = true WHERE import_id = p_import_id AND NOT merged;
  UPDATE app.imports
     SET rows_rejected = (SELECT count(*) FROM app.import_errors WHERE import_id = p_import_id)
   WHERE id = p_import_id;
  RETURN jsonb_build_object('suppressed', v_recorded);
END
$$;
COMMENT ON FUNCTION private.merge_suppression_import(bigint) IS
  'MERGE of a suppression import: its addresses onto the named suppression list (private.record_suppressions).';

CREATE OR REPLACE FUNCTION private.merge_contact_history_import(p_import_id bigint)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_import app.imports;
  v_seeded bigint;
BEGIN
  SELECT * INTO v_import FROM app.imports WHERE id = p_import_id;
  PERFORM private.record_import_rejections(v_import);
  -- The addresses' locks, as a send's claim takes them before it writes the store.
  PERFORM private.lock_addresses(ARRAY(
    SELECT DISTINCT private.address_hash(v.address)
      FROM app.import_extractions x, unnest(x.phones || x.emails) v(address)
     WHERE x.import_id = p_import_id AND NOT x.merged AND x.rejected IS NULL));
  INSERT INTO app.contact_history AS h (tenant_id, address_hash, vertical, last_contact_at,
                                        from_address, source)
  SELECT DISTINCT ON (hash, vertical) v_import.tenant_id, hash, vertical, at, sender, 'import'
    FROM (SELECT private.address_hash(v.address) AS hash,
                 coalesce(nullif(lower(btrim(x.vertical)), ''), '*') AS vertical,
                 x.observed_at AS at, x.sender
            FROM app.import_extractions x, unnest(x.phones || x.emails) v(address)
           WHERE x.import_id = p_import_id AND NOT x.merged AND x.rejected IS NULL) c
   ORDER BY hash, vertical, at DESC
  ON CONFLICT (tenant_id, address_hash, vertical) DO UPDATE
    SET last_contact_at = excluded.last_contact_at, from_address = excluded.from_address,
        last_message_id = NULL, source = 'import'
    WHERE h.last_contact_at < excluded.last_contact_at;
  GET DIAGNOSTICS v_seeded = ROW_COUNT;
  UPDATE app.import_extractions SET merged = true WHERE import_id = p_import_id AND NOT merged;
  UPDATE app.imports
     SET rows_rejected = (SELECT count(*) FROM app.import_errors WHERE import_id = p_import_id)
   WHERE id = p_import_id;
  RETURN jsonb_build_object('seeded', v_seeded);
END
$$;
COMMENT ON FUNCTION private.merge_contact_history_import(bigint) IS
  'MERGE of a contact-history import: the legacy last contacts into the cooldown store (later wins).';
