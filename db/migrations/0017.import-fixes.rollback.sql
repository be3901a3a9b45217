DROP FUNCTION IF EXISTS app.record_import_failure(bigint, text, text),
  private.import_part_end(app.imports), private.finish_import_part(app.imports, bigint),
  private.record_import_rejections(app.imports, bigint, bigint);
ALTER TABLE app.imports DROP COLUMN failures, DROP COLUMN merged_through;
-- Every repeatable file is applied again by the next migrate (functions read the column).
DELETE FROM private.repeatable_applied;
