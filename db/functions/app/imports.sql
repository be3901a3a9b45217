-- The import pipeline's commands (#5). The stages and who runs them:
--   LAND    the command API, in the upload's own transaction: app.begin_import opens a
--           staging table that the API COPYs every source row into; app.finish_landing
--           moves them into app.file_rows, records the counts and enqueues PARSE. An
--           upload that fails (bad request, dropped connection) leaves nothing: the
--           import exists only once every row of it is landed.
--   PARSE   the import worker, in chunks of rows (one pgqueuer job per chunk, so
--           several workers parse one file at once): it reads the landed rows
--           (app.import_file_rows), runs the versioned parser (hermes/imports) and COPYs
--           its extractions into a staging table; app.record_extractions keeps them.
--           A chunk's job resumes after its last extracted row; the chunk that
--           completes the file moves the import on to MERGE.
--   RESOLVE, MERGE, RECORD  one SQL transaction, app.run_import_merge
--           (private.merge_import): keys, set-based upserts with provenance, counts.
-- Stage durations are recorded in app.imports.stage_seconds. A re-parse
-- (app.reparse_import) is a new import reading the landed rows of the first.

-- An import's public shape (GET /v1/imports/{id}, the answers of the commands).
CREATE OR REPLACE FUNCTION private.import_json(p_import app.imports)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT jsonb_build_object(
    'id', p_import.id, 'kind', p_import.kind, 'status', p_import.status,
    'file_name', p_import.file_name, 'parser_version', p_import.parser_version,
    'encoding', p_import.encoding, 'columns', cardinality(p_import.header),
    'mapping', p_import.mapping, 'source_import_id', p_import.source_import_id,
    'rows_total', p_import.rows_total, 'rows_parsed', p_import.rows_parsed,
    'rows_rejected', p_import.rows_rejected, 'rows_unmatched', p_import.rows_unmatched,
    'rows_accepted', CASE WHEN p_import.status = 'completed'
                          THEN p_import.rows_total - p_import.rows_rejected END,
    'identities_created', p_import.identities_created,
    'identities_matched', p_import.identities_matched,
    'stage_seconds', p_import.stage_seconds, 'error', p_import.error,
    'created_at', p_import.created_at, 'completed_at', p_import.completed_at)
$$;

-- Rows per PARSE job: small enough that a resumed job redoes little, large enough
-- that a job's overhead (a claim, three statements) is noise.
CREATE OR REPLACE FUNCTION private.import_chunk_rows()
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT 50000::bigint $$;

-- Enqueues the PARSE jobs of an import: one per chunk of rows (at least one, so that
-- an empty file still goes through its stages).
CREATE OR REPLACE FUNCTION private.enqueue_parse_jobs(p_import app.imports)
RETURNS int
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT count(private.enqueue_job('import_parse', jsonb_build_object(
           'import_id', p_import.id, 'first_row', c * private.import_chunk_rows() + 1,
           'last_row', (c + 1) * private.import_chunk_rows())))::int
    FROM generate_series(0, greatest(0, (p_import.rows_total - 1) / private.import_chunk_rows())) c
$$;

-- Stage durations: each stage's wall time, in seconds, as it ends.
CREATE OR REPLACE FUNCTION private.import_stage(p_stages jsonb, p_stage text, p_started timestamptz)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT p_stages || jsonb_build_object(p_stage,
    round(extract(epoch FROM clock_timestamp() - p_started)::numeric, 3))
$$;

-- LAND, 1: POST /v1/imports. p_import: {kind, file_name?, mapping?, header, parser_version,
-- encoding?, observed_at?}. The compliance kinds (suppression: mapping.list names the
-- list; contact_history) also need compliance:write. Creates the import ('landing') and the staging table
-- pg_temp.import_landing (row_number, payload jsonb array, error), which the caller
-- COPYs the file's rows into in this transaction, then calls app.finish_landing.
CREATE OR REPLACE FUNCTION app.begin_import(p_token text, p_import jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_who private.principal := private.authorize(p_token, 'imports:write');
  v_import app.imports;
  v_header text[];
  v_observed timestamptz;
BEGIN
  IF jsonb_typeof(p_import) IS DISTINCT FROM 'object' THEN
    PERFORM private.raise_problem(422, 'invalid_import', 'The import must be a JSON object.');
  END IF;
  IF coalesce(p_import->>'kind', 'universe') NOT IN ('universe', 'enrichment', 'suppression', 'contact_history') THEN
    PERFORM private.raise_problem(422, 'invalid_kind',
      format('Unknown import kind %s.', left(p_import->>'kind', 40)),
      'Use "universe" (creates identities), "enrichment" (only augments existing ones), "suppression" or "contact_history".');
  END IF;
  IF p_import->>'kind' IN ('suppression', 'contact_history') THEN
    -- Compliance data: the key also needs the scope that writes it by hand.
    PERFORM private.authorize(p_token, 'compliance:write');
  END IF;
  IF p_import->>'kind' = 'suppression'
     AND coalesce(p_import->'mapping'->>'list', '') NOT IN ('do_not_contact', 'litigator', 'hard_bounce', 'complaint') THEN
    PERFORM private.raise_problem(422, 'invalid_list',
      format('A suppression import names its list; %s is not one.', coalesce(left(p_import->'mapping'->>'list', 40), 'none')),
      'Give mapping {"list": "do_not_contact"} (or litigator, hard_bounce, complaint).');
  END IF;
  IF jsonb_typeof(p_import->'header') IS DISTINCT FROM 'array'
     OR jsonb_array_length(p_import->'header') = 0 THEN
    PERFORM private.raise_problem(422, 'missing_header', 'The file has no header row.',
      'The first row of the file names its columns.');
  END IF;
  IF jsonb_array_length(p_import->'header') > 1600 THEN
    PERFORM private.raise_problem(422, 'too_many_columns',
      format('The header has %s columns; an import takes at most 1600.',
             jsonb_array_length(p_import->'header')));
  END IF;
  IF p_import ? 'mapping' AND jsonb_typeof(p_import->'mapping') NOT IN ('object', 'null') THEN
    PERFORM private.raise_problem(422, 'invalid_mapping',
      'The mapping must be a JSON object of field -> column name(s).');
  END IF;
  IF coalesce(btrim(p_import->>'parser_version'), '') = '' THEN
    PERFORM private.raise_problem(422, 'missing_parser_version', 'An import names its parser version.');
  END IF;
  SELECT array_agg(coalesce(h, '') ORDER BY n) INTO v_header
    FROM jsonb_array_elements_text(p_import->'header') WITH ORDINALITY AS e(h, n);
  BEGIN
    v_observed := coalesce((p_import->>'observed_at')::timestamptz, now());
  EXCEPTION WHEN data_exception THEN
    PERFORM private.raise_problem(422, 'invalid_observed_at',
      'observed_at must be an ISO 8601 timestamp.');
  END;

  INSERT INTO app.imports (tenant_id, kind, parser_version, file_name, mapping, api_key_id,
                           header, encoding, observed_at)
  VALUES (v_who.tenant_id, coalesce(p_import->>'kind', 'universe'), p_import->>'parser_version',
          left(p_import->>'file_name', 255), coalesce(nullif(p_import->'mapping', 'null'), '{}'),
          v_who.api_key_id, v_header, coalesce(p_import->>'encoding', 'utf-8'), v_observed)
  RETURNING * INTO v_import;

  -- ON COMMIT DROP: the staging rows never outlive the upload's transaction.
  CREATE TEMP TABLE import_landing (
    row_number bigint NOT NULL CHECK (row_number > 0),
    payload    jsonb NOT NULL CHECK (jsonb_typeof(payload) = 'array'),
    error      text
  ) ON COMMIT DROP;
  EXECUTE format('GRANT INSERT ON pg_temp.import_landing TO %I', session_user);
  RETURN private.import_json(v_import);
END
$$;
COMMENT ON FUNCTION app.begin_import(text, jsonb) IS
  'LAND, first half: creates the import and the staging table its rows are COPYed into (imports:write).';
REVOKE ALL ON FUNCTION app.begin_import(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.begin_import(text, jsonb) TO hermes_api;

-- LAND, 2: the staged rows into app.file_rows; the import moves on to PARSE.
-- p_rows is how many rows the caller sent: a mismatch (a lost COPY buffer) fails the
-- upload rather than landing part of a file.
CREATE OR REPLACE FUNCTION app.finish_landing(p_token text, p_import_id bigint, p_rows bigint)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_who private.principal := private.authorize(p_token, 'imports:write');
  v_import app.imports;
  v_landed bigint;
BEGIN
  SELECT * INTO v_import FROM app.imports
   WHERE id = p_import_id AND tenant_id = v_who.tenant_id AND status = 'landing' FOR UPDATE;
  IF NOT FOUND THEN
    PERFORM private.raise_problem(409, 'import_not_landing', 'This import is not being landed.');
  END IF;
  INSERT INTO app.file_rows (import_id, row_number, tenant_id, payload, error)
  SELECT p_import_id, l.row_number, v_who.tenant_id, l.payload, l.error
    FROM pg_temp.import_landing l;
  GET DIAGNOSTICS v_landed = ROW_COUNT;
  IF v_landed <> p_rows THEN
    PERFORM private.raise_problem(500, 'landing_incomplete',
      format('%s rows were sent but %s arrived; nothing was kept.', p_rows, v_landed),
      'Upload the file again.');
  END IF;
  DROP TABLE pg_temp.import_landing;

  UPDATE app.imports
     SET status = 'parsing', rows_total = v_landed, updated_at = now(),
         stage_seconds = private.import_stage(stage_seconds, 'land', created_at)
   WHERE id = p_import_id
  RETURNING * INTO v_import;
  PERFORM private.enqueue_parse_jobs(v_import);
  RETURN private.import_json(v_import);
END
$$;
COMMENT ON FUNCTION app.finish_landing(text, bigint, bigint) IS
  'LAND, second half: keeps the staged rows verbatim in app.file_rows and enqueues PARSE (imports:write).';
REVOKE ALL ON FUNCTION app.finish_landing(text, bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.finish_landing(text, bigint, bigint) TO hermes_api;

-- GET /v1/imports/{id}.
CREATE OR REPLACE FUNCTION app.get_import(p_token text, p_import_id bigint)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_who private.principal := private.authorize(p_token, 'read');
  v_import app.imports;
BEGIN
  SELECT * INTO v_import FROM app.imports WHERE id = p_import_id AND tenant_id = v_who.tenant_id;
  IF NOT FOUND THEN
    PERFORM private.raise_problem(404, 'import_not_found', 'No such import.');
  END IF;
  RETURN private.import_json(v_import);
END
$$;
COMMENT ON FUNCTION app.get_import(text, bigint) IS 'One of the key''s tenant''s imports, with its stage and counts (read).';
REVOKE ALL ON FUNCTION app.get_import(text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.get_import(text, bigint) TO hermes_api;

-- POST /v1/imports/{id}/reparse: PARSE -> MERGE again over the landed rows, with a newer
-- parser version, as a new import (its own counts and errors) reading the same rows.
CREATE OR REPLACE FUNCTION app.reparse_import(p_token text, p_import_id bigint, p_parser_version text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_who private.principal := private.authorize(p_token, 'imports:write');
  v_source app.imports;
  v_import app.imports;
BEGIN
  SELECT * INTO v_source FROM app.imports WHERE id = p_import_id AND tenant_id = v_who.tenant_id;
  IF NOT FOUND THEN
    PERFORM private.raise_problem(404, 'import_not_found', 'No such import.');
  END IF;
  IF v_source.kind IN ('suppression', 'contact_history') THEN
    PERFORM private.authorize(p_token, 'compliance:write');
  END IF;
  IF v_source.status = 'landing' THEN
    PERFORM private.raise_problem(409, 'import_not_landed', 'This import''s rows are still being landed.');
  END IF;
  IF coalesce(btrim(p_parser_version), '') = '' THEN
    PERFORM private.raise_problem(422, 'missing_parser_version', 'A re-parse names its parser version.');
  END IF;
  INSERT INTO app.imports (tenant_id, kind, status, parser_version, file_name, mapping, api_key_id,
                           header, encoding, observed_at, source_import_id, rows_total)
  VALUES (v_who.tenant_id, v_source.kind, 'parsing', p_parser_version, v_source.file_name,
          v_source.mapping, v_who.api_key_id, v_source.header, v_source.encoding,
          v_source.observed_at, coalesce(v_source.source_import_id, v_source.id), v_source.rows_total)
  RETURNING * INTO v_import;
  PERFORM private.enqueue_parse_jobs(v_import);
  RETURN private.import_json(v_import);
END
$$;
COMMENT ON FUNCTION app.reparse_import(text, bigint, text) IS
  'Re-runs PARSE -> MERGE over an import''s landed rows with another parser version, as a new import (imports:write).';
REVOKE ALL ON FUNCTION app.reparse_import(text, bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.reparse_import(text, bigint, text) TO hermes_api;

-- PARSE, for the import worker: what a chunk's job needs to parse its rows. 'action'
-- is 'parse' with the rows still to do (after the chunk's last extracted row), else
-- 'none' (the chunk is done, or the import is no longer parsing).
CREATE OR REPLACE FUNCTION app.import_parse_plan(p_import_id bigint, p_first_row bigint, p_last_row bigint)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_import app.imports;
  v_done bigint;
BEGIN
  SELECT * INTO v_import FROM app.imports WHERE id = p_import_id;
  IF NOT FOUND OR v_import.status <> 'parsing' THEN
    RETURN jsonb_build_object('action', 'none', 'status', v_import.status);
  END IF;
  SELECT max(x.row_number) INTO v_done FROM app.import_extractions x
   WHERE x.import_id = p_import_id AND x.row_number BETWEEN p_first_row AND p_last_row;
  RETURN jsonb_build_object(
    'action', CASE WHEN coalesce(v_done, p_first_row - 1) >= least(p_last_row, v_import.rows_total)
                   THEN 'finish' ELSE 'parse' END,
    'import_id', v_import.id, 'kind', v_import.kind, 'parser_version', v_import.parser_version,
    'header', to_jsonb(v_import.header), 'mapping', v_import.mapping,
    'observed_at', v_import.observed_at,
    'default_country', (SELECT t.default_country FROM app.tenants t WHERE t.id = v_import.tenant_id),
    'from_row', coalesce(v_done + 1, p_first_row), 'to_row', least(p_last_row, v_import.rows_total));
END
$$;
COMMENT ON FUNCTION app.import_parse_plan(bigint, bigint, bigint) IS
  'PARSE: the parser version, header, mapping and rows left of one chunk of an import (import worker).';
REVOKE ALL ON FUNCTION app.import_parse_plan(bigint, bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.import_parse_plan(bigint, bigint, bigint) TO hermes_worker;

-- PARSE: landed rows of an import (a re-parse reads its source's), by row number.
CREATE OR REPLACE FUNCTION app.import_file_rows(p_import_id bigint, p_from_row bigint, p_to_row bigint)
RETURNS TABLE (row_number bigint, payload jsonb, error text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT f.row_number, f.payload, f.error
    FROM app.imports i
    JOIN app.file_rows f ON f.import_id = coalesce(i.source_import_id, i.id)
   WHERE i.id = p_import_id AND f.row_number BETWEEN p_from_row AND p_to_row
   ORDER BY f.row_number
$$;
COMMENT ON FUNCTION app.import_file_rows(bigint, bigint, bigint) IS
  'PARSE: an import''s landed rows in a range (import worker).';
REVOKE ALL ON FUNCTION app.import_file_rows(bigint, bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.import_file_rows(bigint, bigint, bigint) TO hermes_worker;

-- PARSE: the staging table the worker COPYs a batch of extractions into, in the
-- transaction that then calls app.record_extractions.
CREATE OR REPLACE FUNCTION app.begin_extractions()
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  CREATE TEMP TABLE import_extracted (
    row_number bigint NOT NULL, first_name text, last_name text, name_norm text,
    phones text[] NOT NULL, emails text[] NOT NULL, line1 text, city text, region text,
    postal_code text, country text, external_system text, external_id text, vertical text,
    confidence real NOT NULL, observed_at timestamptz NOT NULL, rejected text, rejected_detail text,
    sender text
  ) ON COMMIT DROP;
  EXECUTE format('GRANT INSERT ON pg_temp.import_extracted TO %I', session_user);
END
$$;
COMMENT ON FUNCTION app.begin_extractions() IS 'PARSE: opens the staging table for a batch of extractions (import worker).';
REVOKE ALL ON FUNCTION app.begin_extractions() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.begin_extractions() TO hermes_worker;

-- PARSE: keeps a batch of extractions (idempotent: a row already extracted keeps its
-- first extraction); when every row of the import is extracted, the import moves on
-- to MERGE (one job).
CREATE OR REPLACE FUNCTION app.record_extractions(p_import_id bigint, p_parser_version text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_import app.imports;
  v_kept bigint;
BEGIN
  SELECT * INTO v_import FROM app.imports WHERE id = p_import_id;
  IF NOT FOUND OR v_import.status <> 'parsing' OR v_import.parser_version <> p_parser_version THEN
    -- A late chunk of an import that moved on (or a worker with another parser): no-op.
    DROP TABLE IF EXISTS pg_temp.import_extracted;
    RETURN jsonb_build_object('kept', 0, 'status', v_import.status);
  END IF;
  INSERT INTO app.import_extractions (import_id, row_number, tenant_id, parser_version, first_name,
      last_name, name_norm, phones, emails, line1, city, region, postal_code, country,
      external_system, external_id, vertical, confidence, observed_at, rejected, rejected_detail,
      sender)
  SELECT p_import_id, e.row_number, v_import.tenant_id, p_parser_version, e.first_name,
         e.last_name, e.name_norm, e.phones, e.emails, e.line1, e.city, e.region, e.postal_code,
         e.country, e.external_system, e.external_id, e.vertical, e.confidence, e.observed_at,
         e.rejected, e.rejected_detail, e.sender
    FROM pg_temp.import_extracted e
   WHERE e.row_number BETWEEN 1 AND v_import.rows_total
  ON CONFLICT (import_id, row_number) DO NOTHING;
  GET DIAGNOSTICS v_kept = ROW_COUNT;
  DROP TABLE pg_temp.import_extracted;

  -- Row lock on the import: chunks finishing at once count in turn.
  UPDATE app.imports SET rows_parsed = rows_parsed + v_kept, updated_at = now()
   WHERE id = p_import_id
  RETURNING * INTO v_import;
  IF v_import.rows_parsed >= v_import.rows_total AND v_import.status = 'parsing' THEN
    -- (status still parsing: a duplicate chunk that waited for the row lock behind the
    -- last one finds the import merging already, and enqueues no second merge)
    UPDATE app.imports
       SET status = 'merging',
           stage_seconds = private.import_stage(stage_seconds, 'parse',
             created_at + coalesce((stage_seconds->>'land')::numeric, 0) * interval '1 second')
     WHERE id = p_import_id AND status = 'parsing'
    RETURNING * INTO v_import;
    IF FOUND THEN
      PERFORM private.enqueue_job('import_merge', jsonb_build_object('import_id', p_import_id));
    END IF;
  END IF;
  RETURN jsonb_build_object('kept', v_kept, 'status', v_import.status,
                            'rows_parsed', v_import.rows_parsed);
END
$$;
COMMENT ON FUNCTION app.record_extractions(bigint, text) IS
  'PARSE: keeps the staged extractions of an import; the last chunk moves it on to MERGE (import worker).';
REVOKE ALL ON FUNCTION app.record_extractions(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.record_extractions(bigint, text) TO hermes_worker;

-- RESOLVE + MERGE + RECORD, for the import worker's merge job: one transaction (the
-- caller's), so a crash leaves nothing half-merged and the re-run job starts over.
-- The compliance kinds merge into their stores instead of the identity graph
-- (db/functions/private/import_compliance.sql).
CREATE OR REPLACE FUNCTION app.run_import_merge(p_import_id bigint)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_import app.imports;
  v_started timestamptz := clock_timestamp();
BEGIN
  SELECT * INTO v_import FROM app.imports WHERE id = p_import_id FOR UPDATE;
  IF NOT FOUND OR v_import.status <> 'merging' THEN
    RETURN jsonb_build_object('action', 'none', 'status', v_import.status);
  END IF;
  IF v_import.kind IN ('suppression', 'contact_history') THEN
    -- A bounded part per transaction (the addresses' locks are held to its commit):
    -- the worker calls again while there is more; each part is idempotent.
    IF (CASE v_import.kind WHEN 'suppression' THEN private.merge_suppression_import(p_import_id)
                           ELSE private.merge_contact_history_import(p_import_id) END ->> 'more')::boolean THEN
      UPDATE app.imports SET updated_at = now() WHERE id = p_import_id;
      RETURN private.import_json(v_import) || jsonb_build_object('action', 'partial');
    END IF;
  ELSE
    PERFORM private.merge_import(p_import_id);
  END IF;
  UPDATE app.imports
     SET status = 'completed', completed_at = now(), updated_at = now(),
         stage_seconds = private.import_stage(stage_seconds, 'merge', v_started)
                         || jsonb_build_object('total', round(extract(epoch FROM clock_timestamp() - created_at)::numeric, 3))
   WHERE id = p_import_id
  RETURNING * INTO v_import;
  RETURN private.import_json(v_import) || jsonb_build_object('action', 'merged');
END
$$;
COMMENT ON FUNCTION app.run_import_merge(bigint) IS
  'MERGE and RECORD: folds a parsed import into the identity graph and completes it (import worker).';
REVOKE ALL ON FUNCTION app.run_import_merge(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.run_import_merge(bigint) TO hermes_worker;

-- A PARSE or MERGE job failed (an exception the worker did not expect: a bug, a value
-- the database refused): the worker records it here, in a transaction of its own,
-- before its job is held as failed. The third failure of an import fails it for good
-- (status failed, the error kept, shown by GET /v1/imports/{id} and api.imports), so
-- that the sweep stops giving it jobs; before that the sweep retries it.
CREATE OR REPLACE FUNCTION app.record_import_failure(p_import_id bigint, p_stage text, p_error text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  max_failures constant int := 3;
  v_import app.imports;
BEGIN
  UPDATE app.imports
     SET failures = failures + 1, updated_at = now(),
         status = CASE WHEN failures + 1 >= max_failures THEN 'failed' ELSE status END,
         error = CASE WHEN failures + 1 >= max_failures
                      THEN format('%s failed %s times; the last error: %s', p_stage, failures + 1, left(p_error, 500))
                      ELSE error END,
         completed_at = CASE WHEN failures + 1 >= max_failures THEN now() ELSE completed_at END
   WHERE id = p_import_id AND status IN ('parsing', 'merging')
  RETURNING * INTO v_import;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('action', 'none');
  END IF;
  RETURN jsonb_build_object('action', CASE WHEN v_import.status = 'failed' THEN 'failed' ELSE 'retry' END,
                            'failures', v_import.failures);
END
$$;
COMMENT ON FUNCTION app.record_import_failure(bigint, text, text) IS
  'A failed PARSE/MERGE job of an import (import worker): counted; the third failure fails the import.';
REVOKE ALL ON FUNCTION app.record_import_failure(bigint, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.record_import_failure(bigint, text, text) TO hermes_worker;

-- The sweep for imports (called by app.run_maintenance): an import still parsing or
-- merging, untouched for p_after, with no queued or picked job of its own, lost its
-- jobs (held as failed when the database went away, removed by hand). It gets them
-- again: every PARSE chunk (a finished chunk's job finds nothing to do) or its MERGE.
CREATE OR REPLACE FUNCTION private.requeue_imports(p_after interval)
RETURNS int
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_with_job bigint[];
  v_import app.imports;
  v_count int := 0;
BEGIN
  v_with_job := ARRAY(
    SELECT DISTINCT (convert_from(j.payload, 'UTF8')::jsonb ->> 'import_id')::bigint
      FROM pgqueuer.pgqueuer j
     WHERE j.entrypoint IN ('import_parse', 'import_merge') AND j.status IN ('queued', 'picked'));
  FOR v_import IN
    SELECT * FROM app.imports i
     WHERE i.status IN ('parsing', 'merging') AND i.updated_at < now() - p_after
       AND i.id <> ALL (v_with_job)
     ORDER BY i.updated_at
     LIMIT 100
     FOR UPDATE SKIP LOCKED
  LOOP
    IF v_import.status = 'parsing' THEN
      PERFORM private.enqueue_parse_jobs(v_import);
    ELSE
      PERFORM private.enqueue_job('import_merge', jsonb_build_object('import_id', v_import.id));
    END IF;
    UPDATE app.imports SET updated_at = now() WHERE id = v_import.id;
    v_count := v_count + 1;
  END LOOP;
  RETURN v_count;
END
$$;
COMMENT ON FUNCTION private.requeue_imports(interval) IS
  'Gives an import that lost its jobs (parsing or merging, idle, no live job) its jobs again.';
