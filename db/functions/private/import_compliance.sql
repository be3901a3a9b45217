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
-- Rows with no address are rejected (no_address), rows with an address the stores
-- cannot key (invalid_address; their valid addresses still go in), and PARSE rejects a
-- contact-history row without a time of last contact (missing_last_contact). Both merge
-- in parts of at most 5,000 addresses, one transaction each (private.import_part_end):
-- app.run_import_merge answers 'partial' until the last part, and the worker calls
-- again; a part is idempotent, so a crash between parts loses nothing.

-- The next part of a compliance import's MERGE: the unmerged rows after merged_through,
-- in row order, holding at most 5,000 addresses (at least one row). Their addresses'
-- locks are held until the part commits, so a part is bounded: the lock table has room
-- for it, and two parts of one import never hold locks at once (a concurrent opt-out,
-- which takes one lock, or a send's claim, which takes its batch's in order, cannot
-- deadlock with it). Returns the last row of the part (NULL: nothing left).
CREATE OR REPLACE FUNCTION private.import_part_end(p_import app.imports)
RETURNS bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT max(p.row_number)
    FROM (SELECT x.row_number, row_number() OVER (ORDER BY x.row_number) AS k,
                 sum(cardinality(x.phones) + cardinality(x.emails)) OVER (ORDER BY x.row_number) AS addresses
            FROM (SELECT * FROM app.import_extractions e
                   WHERE e.import_id = p_import.id AND e.row_number > p_import.merged_through
                   ORDER BY e.row_number LIMIT 5000) x) p
   WHERE p.addresses <= 5000 OR p.k = 1
$$;

DROP FUNCTION IF EXISTS private.record_import_rejections(app.imports);

-- RECORD's errors of rows p_from .. p_to: the rows PARSE rejected, those without an
-- address, and those with an address the compliance stores cannot key
-- (private.address_key: not E.164, not an email address) -- the valid addresses of such
-- a row still go in; the error names the ones that did not. Returns how many.
CREATE OR REPLACE FUNCTION private.record_import_rejections(p_import app.imports, p_from bigint, p_to bigint)
RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
  WITH rows AS (
    SELECT x.*, ARRAY(SELECT v FROM unnest(x.phones || x.emails) v WHERE private.address_key(v) IS NULL) AS invalid
      FROM app.import_extractions x
     WHERE x.import_id = p_import.id AND x.row_number BETWEEN p_from AND p_to AND NOT x.merged
  ), bad AS (
    INSERT INTO app.import_errors (import_id, row_number, tenant_id, reason, detail)
    SELECT r.import_id, r.row_number, r.tenant_id,
           CASE WHEN r.rejected IS NOT NULL THEN r.rejected
                WHEN cardinality(r.phones) + cardinality(r.emails) = 0 THEN 'no_address'
                ELSE 'invalid_address' END,
           CASE WHEN r.rejected IS NOT NULL THEN r.rejected_detail
                WHEN cardinality(r.invalid) > 0
                  THEN format('not an E.164 number or an email address: %s%s',
                              left(array_to_string(r.invalid, ', '), 200),
                              CASE WHEN cardinality(r.phones) + cardinality(r.emails) > cardinality(r.invalid)
                                   THEN ' (the row''s other addresses were taken)' ELSE '' END) END
      FROM rows r
     WHERE r.rejected IS NOT NULL OR cardinality(r.phones) + cardinality(r.emails) = 0 OR cardinality(r.invalid) > 0
    ON CONFLICT (import_id, row_number) DO NOTHING
    RETURNING 1
  )
  SELECT count(*) FROM bad
$$;

-- The end of a part: its rows merged, the import's progress and rejected count;
-- {more} says whether rows are left.
CREATE OR REPLACE FUNCTION private.finish_import_part(p_import app.imports, p_to bigint)
RETURNS boolean
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
  WITH merged AS (
    UPDATE app.import_extractions SET merged = true
     WHERE import_id = p_import.id AND row_number BETWEEN p_import.merged_through + 1 AND p_to AND NOT merged
  ), progress AS (
    UPDATE app.imports
       SET merged_through = p_to,
           rows_rejected = (SELECT count(*) FROM app.import_errors WHERE import_id = p_import.id)
     WHERE id = p_import.id
  )
  SELECT EXISTS (SELECT 1 FROM app.import_extractions WHERE import_id = p_import.id AND row_number > p_to)
$$;

CREATE OR REPLACE FUNCTION private.merge_suppression_import(p_import_id bigint)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_import app.imports;
  v_to bigint;
  v_batch jsonb;
  v_result jsonb;
BEGIN
  SELECT * INTO v_import FROM app.imports WHERE id = p_import_id;
  v_to := private.import_part_end(v_import);
  IF v_to IS NULL THEN
    RETURN jsonb_build_object('suppressed', 0, 'more', false);
  END IF;
  PERFORM private.record_import_rejections(v_import, v_import.merged_through + 1, v_to);
  SELECT coalesce(jsonb_agg(d.address ORDER BY d.address), '[]') INTO v_batch
    FROM (SELECT DISTINCT v.address
            FROM app.import_extractions x, unnest(x.phones || x.emails) v(address)
           WHERE x.import_id = p_import_id AND x.row_number BETWEEN v_import.merged_through + 1 AND v_to
             AND NOT x.merged AND x.rejected IS NULL AND private.address_key(v.address) IS NOT NULL) d;
  v_result := private.record_suppressions(v_import.tenant_id, v_import.api_key_id, 'add',
                                          v_import.mapping->>'list', v_batch,
                                          format('import %s', p_import_id), 'import');
  RETURN jsonb_build_object('suppressed', (v_result->>'recorded')::bigint,
                            'more', private.finish_import_part(v_import, v_to));
END
$$;
COMMENT ON FUNCTION private.merge_suppression_import(bigint) IS
  'MERGE of a suppression import, one part a call: its addresses onto the named list (private.record_suppressions).';

CREATE OR REPLACE FUNCTION private.merge_contact_history_import(p_import_id bigint)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_import app.imports;
  v_to bigint;
  v_seeded bigint;
BEGIN
  SELECT * INTO v_import FROM app.imports WHERE id = p_import_id;
  v_to := private.import_part_end(v_import);
  IF v_to IS NULL THEN
    RETURN jsonb_build_object('seeded', 0, 'more', false);
  END IF;
  PERFORM private.record_import_rejections(v_import, v_import.merged_through + 1, v_to);
  CREATE TEMP TABLE IF NOT EXISTS import_contacts (hash bytea, vertical text, at timestamptz, sender text)
    ON COMMIT DROP;
  INSERT INTO import_contacts
  SELECT private.address_hash(private.address_key(v.address)),
         coalesce(nullif(lower(btrim(x.vertical)), ''), '*'), x.observed_at, x.sender
    FROM app.import_extractions x, unnest(x.phones || x.emails) v(address)
   WHERE x.import_id = p_import_id AND x.row_number BETWEEN v_import.merged_through + 1 AND v_to
     AND NOT x.merged AND x.rejected IS NULL AND private.address_key(v.address) IS NOT NULL;
  -- The addresses' locks, as a send's claim takes them before it writes the store.
  PERFORM private.lock_addresses(ARRAY(SELECT DISTINCT c.hash FROM import_contacts c));
  INSERT INTO app.contact_history AS h (tenant_id, address_hash, vertical, last_contact_at,
                                        from_address, source)
  SELECT DISTINCT ON (c.hash, c.vertical) v_import.tenant_id, c.hash, c.vertical, c.at, c.sender, 'import'
    FROM import_contacts c
   ORDER BY c.hash, c.vertical, c.at DESC
  ON CONFLICT (tenant_id, address_hash, vertical) DO UPDATE
    SET last_contact_at = excluded.last_contact_at, from_address = excluded.from_address,
        last_message_id = NULL, source = 'import'
    WHERE h.last_contact_at < excluded.last_contact_at;
  GET DIAGNOSTICS v_seeded = ROW_COUNT;
  DROP TABLE import_contacts;
  RETURN jsonb_build_object('seeded', v_seeded, 'more', private.finish_import_part(v_import, v_to));
END
$$;
COMMENT ON FUNCTION private.merge_contact_history_import(bigint) IS
  'MERGE of a contact-history import, one part a call: the legacy last contacts into the cooldown store (later wins).';
