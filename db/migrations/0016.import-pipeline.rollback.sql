-- The pipeline's functions (db/functions/app/imports.sql) take app.imports rows and read
-- the columns dropped below.
DROP FUNCTION IF EXISTS app.begin_import(text, jsonb), app.finish_landing(text, bigint, bigint),
  app.get_import(text, bigint), app.reparse_import(text, bigint, text),
  app.import_parse_plan(bigint, bigint, bigint), app.import_file_rows(bigint, bigint, bigint),
  app.begin_extractions(), app.record_extractions(bigint, text), app.run_import_merge(bigint),
  private.import_json(app.imports), private.enqueue_parse_jobs(app.imports),
  private.import_stage(jsonb, text, timestamptz), private.import_chunk_rows(),
  private.requeue_imports(interval), private.record_import_rejections(app.imports),
  private.merge_suppression_import(bigint), private.merge_contact_history_import(bigint);
UPDATE app.api_keys SET scopes = array_remove(scopes, 'imports:write') WHERE 'imports:write' = ANY (scopes);
ALTER TABLE app.api_keys DROP CONSTRAINT api_keys_scopes_check;
ALTER TABLE app.api_keys ADD CONSTRAINT api_keys_scopes_check CHECK (
  cardinality(scopes) > 0
  AND scopes <@ ARRAY['admin', 'messages:write', 'keys:write', 'read', 'compliance:write']);
COMMENT ON COLUMN app.api_keys.scopes IS 'admin (platform), messages:write, keys:write, read, compliance:write.';
DELETE FROM app.import_errors WHERE import_id IN (SELECT id FROM app.imports WHERE kind IN ('suppression', 'contact_history'));
DELETE FROM app.import_extractions WHERE import_id IN (SELECT id FROM app.imports WHERE kind IN ('suppression', 'contact_history'));
DELETE FROM app.file_rows WHERE import_id IN (SELECT id FROM app.imports WHERE kind IN ('suppression', 'contact_history'));
DELETE FROM app.imports WHERE kind IN ('suppression', 'contact_history');
ALTER TABLE app.imports DROP CONSTRAINT imports_kind_check;
ALTER TABLE app.imports ADD CONSTRAINT imports_kind_check CHECK (kind IN ('universe', 'enrichment'));
ALTER TABLE app.import_extractions DROP COLUMN sender;
ALTER TABLE app.import_extractions DROP COLUMN rejected_detail;
ALTER TABLE app.file_rows DROP COLUMN error;
COMMENT ON TABLE app.file_rows IS 'LAND: each source row verbatim, as {header: value}.';
ALTER TABLE app.imports
  DROP COLUMN header, DROP COLUMN encoding, DROP COLUMN observed_at,
  DROP COLUMN source_import_id, DROP COLUMN rows_parsed, DROP COLUMN updated_at;
-- The repeatable files this dropped functions of are applied again by the next migrate.
DELETE FROM private.repeatable_applied;
