-- The import pipeline's stages (#5): what LAND, PARSE and the jobs need on top of the
-- identity-graph tables of 0015.
--   * an import records its file's header (LAND keeps each row as a jsonb array of its
--     fields, in file order, so duplicate or empty header names lose nothing), the
--     upload's encoding, when its rows were observed, and -- for a re-parse -- the
--     import whose landed rows it reads (no re-upload);
--   * a landed row the CSV reader could not read (an unterminated quote, a field over
--     the size limit, bytes that are not the declared encoding) keeps what could be
--     kept and LAND's reason, so that PARSE rejects it with that reason and
--     accepted + rejected = rows still holds;
--   * a rejection carries a detail (which column, which value) besides its reason;
--   * two kinds for compliance data share the pipeline: 'suppression' (a list of
--     numbers / emails into a suppression list) and 'contact_history' (a legacy
--     system's last contacts, from -> to at a time, into the cooldown store); their
--     extractions name the sender.
-- depends: 0015.identity-graph

ALTER TABLE app.imports
  ADD COLUMN header           text[] NOT NULL DEFAULT '{}',
  ADD COLUMN encoding         text NOT NULL DEFAULT 'utf-8',
  ADD COLUMN observed_at      timestamptz NOT NULL DEFAULT now(),
  ADD COLUMN source_import_id bigint REFERENCES app.imports (id),
  ADD COLUMN rows_parsed      bigint NOT NULL DEFAULT 0,
  ADD COLUMN updated_at       timestamptz NOT NULL DEFAULT now();
COMMENT ON COLUMN app.imports.header IS 'The file''s header row, verbatim; file_rows.payload holds each row''s fields in this order.';
COMMENT ON COLUMN app.imports.source_import_id IS 'A re-parse: the import whose landed rows this one reads.';
COMMENT ON COLUMN app.imports.rows_parsed IS 'PARSE''s progress: rows extracted so far (a resumed job continues after them).';

ALTER TABLE app.file_rows ADD COLUMN error text;
COMMENT ON TABLE app.file_rows IS
  'LAND: each source row verbatim, as a jsonb array of its fields in file order (app.imports.header names them).';
COMMENT ON COLUMN app.file_rows.error IS
  'Why the CSV reader could not read the row (payload then holds what it could keep); PARSE rejects it with this reason.';

ALTER TABLE app.import_extractions ADD COLUMN rejected_detail text;
ALTER TABLE app.import_extractions ADD COLUMN sender text;
COMMENT ON COLUMN app.import_extractions.sender IS 'contact_history: who contacted the row''s addresses (E.164 or email).';

ALTER TABLE app.imports DROP CONSTRAINT imports_kind_check;
ALTER TABLE app.imports ADD CONSTRAINT imports_kind_check
  CHECK (kind IN ('universe', 'enrichment', 'suppression', 'contact_history'));

-- A scope for imports (POST /v1/imports, re-parses). Keys minted before keep theirs;
-- a tenant adds it with POST /v1/keys.
ALTER TABLE app.api_keys DROP CONSTRAINT api_keys_scopes_check;
ALTER TABLE app.api_keys ADD CONSTRAINT api_keys_scopes_check CHECK (
  cardinality(scopes) > 0
  AND scopes <@ ARRAY['admin', 'messages:write', 'keys:write', 'read', 'compliance:write', 'imports:write']);
COMMENT ON COLUMN app.api_keys.scopes IS
  'admin (platform), messages:write, keys:write, read, compliance:write, imports:write.';
