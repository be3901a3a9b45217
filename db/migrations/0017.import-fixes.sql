-- Imports that fail for good: app.record_import_failure counts an import's failed jobs
-- and fails it at the third, instead of the sweep retrying it forever.
-- depends: 0016.import-pipeline

ALTER TABLE app.imports ADD COLUMN failures int NOT NULL DEFAULT 0;
COMMENT ON COLUMN app.imports.failures IS
  'PARSE/MERGE jobs that failed unexpectedly (app.record_import_failure); the third fails the import.';

-- The compliance kinds merge in parts of at most 5,000 addresses, one transaction each
-- (their addresses' locks are held to its commit): how far the merge has come.
ALTER TABLE app.imports ADD COLUMN merged_through bigint NOT NULL DEFAULT 0;
COMMENT ON COLUMN app.imports.merged_through IS
  'Compliance kinds: the rows merged so far (1 .. merged_through); the merge goes on from there.';
