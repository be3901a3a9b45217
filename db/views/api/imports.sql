-- api.imports: your contact imports, their stage and counts (accepted + rejected = rows).
CREATE OR REPLACE VIEW api.imports WITH (security_invoker = true) AS
SELECT i.id,
       i.kind,
       i.status,
       i.file_name,
       i.parser_version,
       i.rows_total,
       i.rows_rejected,
       i.rows_unmatched,
       i.identities_created,
       i.identities_matched,
       i.error,
       i.created_at,
       i.completed_at
  FROM app.imports i;
COMMENT ON VIEW api.imports IS
  'Your contact imports: kind (universe, enrichment), status (landing ... completed), counts per stage.';
REVOKE ALL ON api.imports FROM PUBLIC;
GRANT SELECT ON api.imports TO hermes_integrator, hermes_anon;

-- api.import_errors: each rejected row of an import, with its number and reason.
CREATE OR REPLACE VIEW api.import_errors WITH (security_invoker = true) AS
SELECT e.import_id,
       e.row_number,
       e.reason,
       e.detail
  FROM app.import_errors e;
COMMENT ON VIEW api.import_errors IS 'Rejected rows of your imports: row number (1 = first data row) and reason.';
REVOKE ALL ON api.import_errors FROM PUBLIC;
GRANT SELECT ON api.import_errors TO hermes_integrator, hermes_anon;
