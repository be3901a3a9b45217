-- The import's RESOLVE and MERGE stages (#5), set-based over an import's parsed rows
-- (app.import_extractions). See 0015.identity-graph for the model.

-- RESOLVE: the natural key of a postal address: sha256 of its normalized parts (the
-- parser normalizes spelling -- 'Street' and 'St', 'Calif.' and 'CA'; here only case
-- and spaces), NULL without a street line. No SET clause (like private.uuid7): the
-- planner inlines it into the merge's set-based statements instead of calling it per
-- row; it names only pg_catalog functions.
CREATE OR REPLACE FUNCTION private.property_hash(
  p_line1 text, p_city text, p_region text, p_postal_code text, p_country text)
RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT CASE WHEN nullif(btrim(p_line1), '') IS NOT NULL THEN
    sha256(convert_to(concat_ws('|',
      lower(regexp_replace(btrim(p_line1), '\s+', ' ', 'g')),
      lower(regexp_replace(btrim(coalesce(p_city, '')), '\s+', ' ', 'g')),
      lower(btrim(coalesce(p_region, ''))), lower(btrim(coalesce(p_postal_code, ''))),
      lower(btrim(coalesce(p_country, '')))), 'UTF8'))
  END
$$;
COMMENT ON FUNCTION private.property_hash(text, text, text, text, text) IS
  'The natural key of a normalized postal address (NULL without a street line).';

-- RESOLVE: an identity's natural key: the normalized name and the property; without a
-- property, the name and the first (lowest) phone, else the first email. NULL when
-- there is no name or nothing to pair it with: such a row cannot name a person.
-- Inlined like property_hash (no SET clause).
CREATE OR REPLACE FUNCTION private.identity_hash(
  p_name_norm text, p_property_hash bytea, p_phones text[], p_emails text[])
RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT CASE WHEN nullif(btrim(p_name_norm), '') IS NOT NULL THEN
    sha256(convert_to('n:' || btrim(p_name_norm) || '|' || coalesce(
      'p:' || encode(p_property_hash, 'hex'),
      't:' || (SELECT min(x) FROM unnest(p_phones) x),
      'e:' || (SELECT min(x) FROM unnest(p_emails) x)), 'UTF8'))
  END
$$;
COMMENT ON FUNCTION private.identity_hash(text, bytea, text[], text[]) IS
  'An identity''s natural key: normalized name + property (else first phone, else first email); under-merges by design.';

-- MERGE (and RECORD's counts): folds every parsed, not yet merged row of an import into
-- the identity graph, in one transaction, and returns the import's counts. Idempotent:
-- merging rows again (a resumed job, the same file re-imported) adds nothing and changes
-- nothing; a crash leaves the rows unmerged and nothing half-merged.
--   * a row is matched to an identity by its external id (system + id) first, else by
--     identity_hash; 'universe' imports create identities for unmatched rows,
--     'enrichment' imports never do (such rows count as unmatched);
--   * within one import, rows with one key are one identity; its display name is the
--     row with the highest (confidence, observed_at, row number), and replaces the
--     stored one only if it outranks it on (confidence, observed_at);
--   * phones, emails and properties fan out to rows of their own; links to them are
--     insert-only with the provenance of the first row that showed them; leads are
--     unique on (identity, vertical, property); an external id maps to the first
--     identity it was seen with;
--   * rejected rows (PARSE's reason, or no key) go to app.import_errors.
CREATE OR REPLACE FUNCTION private.merge_import(p_import_id bigint)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_import  app.imports;
  v_source  text;
  v_matched bigint;
  v_unmatched bigint;
  v_created bigint;
  v_rejected bigint;
BEGIN
  SELECT * INTO v_import FROM app.imports WHERE id = p_import_id FOR UPDATE;
  IF NOT FOUND THEN
    PERFORM private.raise_problem(404, 'import_not_found', 'No such import.');
  END IF;
  v_source := 'import:' || v_import.kind;
  -- One merge per tenant at a time: two imports of one tenant would otherwise race to
  -- map one external id or lock the same identities in different orders.
  PERFORM pg_advisory_xact_lock(hashtextextended('hermes.merge_import:' || v_import.tenant_id::text, 0));

  CREATE TEMP TABLE IF NOT EXISTS pg_temp.merge_rows (
    row_number bigint PRIMARY KEY, tenant_id uuid, first_name text, last_name text,
    name_norm text, phones text[], emails text[], line1 text, city text, region text,
    postal_code text, country text, property_hash bytea, identity_hash bytea,
    external_system text, external_id text, vertical text, confidence real,
    observed_at timestamptz, rejected text, rejected_detail text, identity_id uuid, property_id bigint
  ) ON COMMIT DROP;
  TRUNCATE pg_temp.merge_rows;

  -- RESOLVE: the keys of every pending row.
  INSERT INTO pg_temp.merge_rows
  SELECT x.row_number, x.tenant_id, x.first_name, x.last_name, btrim(x.name_norm),
         v.phones, v.emails,
         x.line1, x.city, x.region, x.postal_code, coalesce(x.country, 'US'), h.property_hash,
         private.identity_hash(x.name_norm, h.property_hash, v.phones, v.emails),
         nullif(btrim(x.external_system), ''), nullif(btrim(x.external_id), ''),
         nullif(lower(btrim(x.vertical)), ''), x.confidence, x.observed_at, x.rejected,
         x.rejected_detail, NULL, NULL
    FROM app.import_extractions x
   CROSS JOIN LATERAL (SELECT private.property_hash(x.line1, x.city, x.region, x.postal_code,
                                                    coalesce(x.country, 'US')) AS property_hash) h
   -- Only valid values count, for the key as for the links.
   CROSS JOIN LATERAL (
     SELECT ARRAY(SELECT DISTINCT p FROM unnest(x.phones) p WHERE p ~ '^\+[1-9][0-9]{6,14}$') AS phones,
            ARRAY(SELECT DISTINCT e FROM unnest(x.emails) e
                   WHERE e = lower(btrim(e)) AND e LIKE '%_@_%') AS emails) v
   WHERE x.import_id = p_import_id AND x.tenant_id = v_import.tenant_id AND NOT x.merged;
  ANALYZE pg_temp.merge_rows;

  -- Match: external id first (a row with no key of its own may still name a known person).
  UPDATE pg_temp.merge_rows r SET identity_id = e.identity_id
    FROM app.external_refs e
   WHERE r.rejected IS NULL
     AND e.tenant_id = r.tenant_id AND e.system = r.external_system AND e.external_id = r.external_id;
  UPDATE pg_temp.merge_rows SET rejected = 'no_identity_key'
   WHERE rejected IS NULL AND identity_hash IS NULL AND identity_id IS NULL;

  INSERT INTO app.import_errors (import_id, row_number, tenant_id, reason, detail)
  SELECT p_import_id, r.row_number, r.tenant_id, r.rejected, r.rejected_detail
    FROM pg_temp.merge_rows r WHERE r.rejected IS NOT NULL
  ON CONFLICT (import_id, row_number) DO NOTHING;
  DELETE FROM pg_temp.merge_rows WHERE rejected IS NOT NULL;

  -- Then identity_hash.
  UPDATE pg_temp.merge_rows r SET identity_id = i.id
    FROM app.identities i
   WHERE r.identity_id IS NULL AND i.tenant_id = r.tenant_id AND i.identity_hash = r.identity_hash;
  -- Rows of one key within the import follow a row matched by its external id.
  UPDATE pg_temp.merge_rows r SET identity_id = m.identity_id
    FROM (SELECT DISTINCT ON (identity_hash) identity_hash, identity_id
            FROM pg_temp.merge_rows WHERE identity_id IS NOT NULL
           ORDER BY identity_hash, row_number) m
   WHERE r.identity_id IS NULL AND r.identity_hash = m.identity_hash;
  -- Rows that share a new external id are one person: the key of its first row.
  UPDATE pg_temp.merge_rows r SET identity_hash = f.identity_hash
    FROM (SELECT DISTINCT ON (external_system, external_id) external_system, external_id, identity_hash
            FROM pg_temp.merge_rows
           WHERE identity_id IS NULL AND external_id IS NOT NULL AND external_system IS NOT NULL
           ORDER BY external_system, external_id, row_number) f
   WHERE r.identity_id IS NULL AND r.external_system = f.external_system AND r.external_id = f.external_id;
  -- Matched: identities that existed before this import.
  SELECT count(DISTINCT r.identity_id) INTO v_matched
    FROM pg_temp.merge_rows r JOIN app.identities i ON i.id = r.identity_id
   WHERE i.created_import_id <> p_import_id;

  IF v_import.kind = 'enrichment' THEN
    SELECT count(*) INTO v_unmatched FROM pg_temp.merge_rows WHERE identity_id IS NULL;
    DELETE FROM pg_temp.merge_rows WHERE identity_id IS NULL;
  ELSE
    v_unmatched := 0;
  END IF;

  -- Properties (fan out), then the new identities with their best row's name.
  INSERT INTO app.properties (tenant_id, property_hash, line1, city, region, postal_code, country,
                              import_id, row_number)
  SELECT DISTINCT ON (r.property_hash) r.tenant_id, r.property_hash, r.line1, r.city, r.region,
         r.postal_code, r.country, p_import_id, r.row_number
    FROM pg_temp.merge_rows r WHERE r.property_hash IS NOT NULL
   ORDER BY r.property_hash, r.row_number
  ON CONFLICT (tenant_id, property_hash) DO NOTHING;
  -- Each fan-out table is analyzed after its insert: the joins that look the new ids
  -- up run in this transaction, and statistics from before a large import (or none,
  -- on a new database) make the planner pick a nested loop over a scan of the whole
  -- table -- minutes instead of a second.
  ANALYZE app.properties;
  UPDATE pg_temp.merge_rows r SET property_id = p.id
    FROM app.properties p
   WHERE p.tenant_id = r.tenant_id AND p.property_hash = r.property_hash;

  INSERT INTO app.identities (id, tenant_id, identity_hash, name_norm, property_id, first_name, last_name,
                              name_confidence, name_observed_at, name_import_id, name_row_number,
                              created_import_id)
  SELECT DISTINCT ON (r.identity_hash) private.uuid7(), r.tenant_id, r.identity_hash, r.name_norm, r.property_id,
         r.first_name, r.last_name, r.confidence, r.observed_at, p_import_id, r.row_number, p_import_id
    FROM pg_temp.merge_rows r WHERE r.identity_id IS NULL
   ORDER BY r.identity_hash, r.confidence DESC, r.observed_at DESC, r.row_number DESC
  ON CONFLICT (tenant_id, identity_hash) DO NOTHING;
  GET DIAGNOSTICS v_created = ROW_COUNT;
  ANALYZE app.identities;
  -- (Also the rows whose identity a concurrent import created first.)
  UPDATE pg_temp.merge_rows r SET identity_id = i.id
    FROM app.identities i
   WHERE r.identity_id IS NULL AND i.tenant_id = r.tenant_id AND i.identity_hash = r.identity_hash;

  -- Scalars: the best row per identity that has a name replaces the stored name if it
  -- outranks it (a row without one -- an enrichment by external id -- says nothing).
  UPDATE app.identities i
     SET first_name = b.first_name, last_name = b.last_name, name_confidence = b.confidence,
         name_observed_at = b.observed_at, name_import_id = p_import_id,
         name_row_number = b.row_number, updated_at = now()
    FROM (SELECT DISTINCT ON (r.identity_id) r.*
            FROM pg_temp.merge_rows r
           WHERE r.first_name IS NOT NULL OR r.last_name IS NOT NULL
           ORDER BY r.identity_id, r.confidence DESC, r.observed_at DESC, r.row_number DESC) b
   WHERE i.id = b.identity_id
     AND (b.confidence, b.observed_at) > (i.name_confidence, i.name_observed_at)
     AND (b.first_name, b.last_name) IS DISTINCT FROM (i.first_name, i.last_name);

  -- Phones and emails fan out; links keep their first provenance.
  INSERT INTO app.phone_numbers (tenant_id, e164)
  SELECT DISTINCT r.tenant_id, p FROM pg_temp.merge_rows r, unnest(r.phones) p
  ON CONFLICT (tenant_id, e164) DO NOTHING;
  ANALYZE app.phone_numbers;
  INSERT INTO app.identity_phones (tenant_id, identity_id, phone_id, confidence, source, import_id, row_number)
  SELECT DISTINCT ON (r.identity_id, n.id) r.tenant_id, r.identity_id, n.id, r.confidence, v_source,
         p_import_id, r.row_number
    FROM pg_temp.merge_rows r CROSS JOIN LATERAL unnest(r.phones) p
    JOIN app.phone_numbers n ON n.tenant_id = r.tenant_id AND n.e164 = p
   ORDER BY r.identity_id, n.id, r.row_number
  ON CONFLICT (identity_id, phone_id) DO NOTHING;

  INSERT INTO app.email_addresses (tenant_id, address)
  SELECT DISTINCT r.tenant_id, e FROM pg_temp.merge_rows r, unnest(r.emails) e
  ON CONFLICT (tenant_id, address) DO NOTHING;
  ANALYZE app.email_addresses;
  INSERT INTO app.identity_emails (tenant_id, identity_id, email_id, confidence, source, import_id, row_number)
  SELECT DISTINCT ON (r.identity_id, n.id) r.tenant_id, r.identity_id, n.id, r.confidence, v_source,
         p_import_id, r.row_number
    FROM pg_temp.merge_rows r CROSS JOIN LATERAL unnest(r.emails) e
    JOIN app.email_addresses n ON n.tenant_id = r.tenant_id AND n.address = e
   ORDER BY r.identity_id, n.id, r.row_number
  ON CONFLICT (identity_id, email_id) DO NOTHING;

  INSERT INTO app.identity_properties (tenant_id, identity_id, property_id, confidence, source, import_id, row_number)
  SELECT DISTINCT ON (r.identity_id, r.property_id) r.tenant_id, r.identity_id, r.property_id, r.confidence,
         v_source, p_import_id, r.row_number
    FROM pg_temp.merge_rows r WHERE r.property_id IS NOT NULL
   ORDER BY r.identity_id, r.property_id, r.row_number
  ON CONFLICT (identity_id, property_id) DO NOTHING;

  INSERT INTO app.verticals (tenant_id, code)
  SELECT DISTINCT r.tenant_id, r.vertical FROM pg_temp.merge_rows r WHERE r.vertical IS NOT NULL
  ON CONFLICT DO NOTHING;
  INSERT INTO app.leads (tenant_id, identity_id, vertical, property_id, import_id, row_number)
  SELECT DISTINCT ON (r.identity_id, r.vertical, r.property_id) r.tenant_id, r.identity_id, r.vertical,
         r.property_id, p_import_id, r.row_number
    FROM pg_temp.merge_rows r WHERE r.vertical IS NOT NULL
   ORDER BY r.identity_id, r.vertical, r.property_id, r.row_number
  ON CONFLICT (identity_id, vertical, property_id) DO NOTHING;

  INSERT INTO app.external_refs (tenant_id, system, external_id, identity_id, import_id, row_number)
  SELECT DISTINCT ON (r.external_system, r.external_id) r.tenant_id, r.external_system, r.external_id,
         r.identity_id, p_import_id, r.row_number
    FROM pg_temp.merge_rows r WHERE r.external_system IS NOT NULL AND r.external_id IS NOT NULL
   ORDER BY r.external_system, r.external_id, r.row_number
  ON CONFLICT (tenant_id, system, external_id) DO NOTHING;

  -- RECORD.
  UPDATE app.import_extractions SET merged = true WHERE import_id = p_import_id AND NOT merged;
  SELECT count(*) INTO v_rejected FROM app.import_errors WHERE import_id = p_import_id;
  UPDATE app.imports
     SET rows_rejected = v_rejected,
         rows_unmatched = rows_unmatched + v_unmatched,
         identities_created = identities_created + v_created,
         identities_matched = identities_matched + v_matched
   WHERE id = p_import_id
  RETURNING * INTO v_import;
  RETURN jsonb_build_object('import_id', p_import_id, 'rows_rejected', v_import.rows_rejected,
                            'rows_unmatched', v_import.rows_unmatched,
                            'identities_created', v_import.identities_created,
                            'identities_matched', v_import.identities_matched);
END
$$;
COMMENT ON FUNCTION private.merge_import(bigint) IS
  'MERGE: folds an import''s parsed rows into the identity graph, set-based and idempotent, with provenance.';
