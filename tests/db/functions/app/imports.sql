-- The import pipeline's commands (db/functions/app/imports.sql): LAND's two halves and
-- their refusals, the PARSE jobs per chunk, resumable plans, idempotent extractions,
-- the hand-over to MERGE, re-parses, scopes and tenants.
BEGIN;
\ir ../../helpers.psql
SELECT plan(37);

SELECT pg_temp.new_tenant('Import Co') AS t1 \gset
SELECT pg_temp.new_tenant('Other Co') AS t2 \gset
SELECT (:'t1'::jsonb -> 'api_key' ->> 'token') AS tok, (:'t1'::jsonb -> 'tenant' ->> 'id') AS tid,
       (:'t2'::jsonb -> 'api_key' ->> 'token') AS tok2 \gset
SELECT pg_temp.new_key(:'tid', 'sender only', ARRAY['messages:write']) ->> 'token' AS sender \gset

-- Refusals, before anything is written.
SELECT is(pg_temp.problem(format($$SELECT app.begin_import(%L, '{"header": ["a"], "parser_version": "hermes-1"}')$$, :'sender')),
  'HM403 insufficient_scope', 'a key without imports:write: HM403');
SELECT is(pg_temp.problem(format($$SELECT app.begin_import(%L, '{"kind": "everyone", "header": ["a"], "parser_version": "p"}')$$, :'tok')),
  'HM422 invalid_kind', 'an unknown kind: HM422 invalid_kind');
SELECT is(pg_temp.problem(format($$SELECT app.begin_import(%L, '{"header": [], "parser_version": "p"}')$$, :'tok')),
  'HM422 missing_header', 'no header: HM422 missing_header');
SELECT is(pg_temp.problem(format($$SELECT app.begin_import(%L, '{"header": ["a"], "parser_version": "p", "mapping": [1]}')$$, :'tok')),
  'HM422 invalid_mapping', 'a mapping that is not an object: HM422 invalid_mapping');
SELECT is(pg_temp.problem(format($$SELECT app.begin_import(%L, '{"header": ["a"]}')$$, :'tok')),
  'HM422 missing_parser_version', 'no parser version: HM422');
SELECT is(pg_temp.problem(format($$SELECT app.begin_import(%L, '{"header": ["a"], "parser_version": "p", "observed_at": "soon"}')$$, :'tok')),
  'HM422 invalid_observed_at', 'a bad observed_at: HM422');
SELECT is((SELECT count(*)::int FROM app.imports), 0, 'and none of them created an import');

-- LAND: begin, rows into the staging table (as the API's COPY does), finish.
SELECT app.begin_import(:'tok', '{"header": ["first_name", "phone"], "parser_version": "hermes-1", "file_name": "a.csv"}') AS b1 \gset
SELECT is(:'b1'::jsonb ->> 'status', 'landing', 'begin_import: the import is landing');
SELECT ok(EXISTS (SELECT 1 FROM pg_class c, aclexplode(c.relacl) a
                   WHERE c.oid = 'pg_temp.import_landing'::regclass AND a.privilege_type = 'INSERT'
                     AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = session_user)),
  'the caller (its session user) is granted INSERT on the staging table it was given');
INSERT INTO pg_temp.import_landing (row_number, payload, error)
SELECT n, jsonb_build_array('P' || n, '+1415626' || lpad(n::text, 4, '0')), NULL FROM generate_series(1, 3) n;
SELECT is(pg_temp.problem(format('SELECT app.finish_landing(%L, %s, 4)', :'tok', :'b1'::jsonb ->> 'id')),
  'HM500 landing_incomplete', 'a row count that does not match what arrived fails the upload');
SELECT is(pg_temp.problem(format('SELECT app.finish_landing(%L, %s, 3)', :'tok2', :'b1'::jsonb ->> 'id')),
  'HM409 import_not_landing', 'another tenant cannot finish it');
SELECT app.finish_landing(:'tok', (:'b1'::jsonb ->> 'id')::bigint, 3) AS f1 \gset
SELECT (:'f1'::jsonb ->> 'id')::bigint AS i1 \gset
SELECT results_eq(format('SELECT status, rows_total FROM app.imports WHERE id = %s', :i1),
  $$VALUES ('parsing', 3::bigint)$$, 'finish_landing: rows counted, on to PARSE');
SELECT results_eq(format('SELECT row_number, payload->>0 FROM app.file_rows WHERE import_id = %s ORDER BY 1', :i1),
  $$VALUES (1::bigint, 'P1'), (2, 'P2'), (3, 'P3')$$, 'every row landed verbatim');
SELECT ok(to_regclass('pg_temp.import_landing') IS NULL, 'the staging table is gone');
SELECT results_eq($$SELECT convert_from(payload, 'UTF8')::jsonb FROM pgqueuer.pgqueuer WHERE entrypoint = 'import_parse'$$,
  format($$VALUES ('{"import_id": %s, "first_row": 1, "last_row": 50000}'::jsonb)$$, :i1),
  'one PARSE job for a small file');
SELECT is(pg_temp.problem(format('SELECT app.get_import(%L, %s)', :'tok2', :i1)), 'HM404 import_not_found',
  'another tenant does not see it');

-- PARSE: a plan, extractions kept once, resumable.
SELECT app.import_parse_plan(:i1, 1, 50000) AS p1 \gset
SELECT is(:'p1'::jsonb - 'observed_at' - 'mapping' - 'kind' - 'import_id' - 'default_country',
  '{"action": "parse", "header": ["first_name", "phone"], "parser_version": "hermes-1", "from_row": 1, "to_row": 3}',
  'the plan: every row of the chunk, with the header and parser version');
CREATE FUNCTION pg_temp.extract(p_import bigint, p_rows int[]) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  PERFORM app.begin_extractions();
  INSERT INTO pg_temp.import_extracted (row_number, first_name, name_norm, phones, emails, confidence, observed_at)
  SELECT n, 'P' || n, 'p' || n, ARRAY['+1415626' || lpad(n::text, 4, '0')], '{}', 1, now() FROM unnest(p_rows) n;
  RETURN app.record_extractions(p_import, 'hermes-1');
END $$;
SELECT is(pg_temp.extract(:i1, ARRAY[1, 2]) ->> 'kept', '2', 'two rows extracted');
SELECT is(app.import_parse_plan(:i1, 1, 50000) ->> 'from_row', '3', 'a resumed job starts after them');
SELECT is(pg_temp.extract(:i1, ARRAY[2]) ->> 'kept', '0', 'a row extracted twice is kept once');
SELECT is(pg_temp.extract(:i1, ARRAY[3]) ->> 'status', 'merging', 'the last row moves the import on to MERGE');
SELECT is((SELECT count(*)::int FROM pgqueuer.pgqueuer WHERE entrypoint = 'import_merge'), 1, 'with one merge job');
SELECT is(app.import_parse_plan(:i1, 1, 50000) ->> 'action', 'none', 'and a late PARSE job has nothing to do');

-- MERGE and RECORD.
SELECT app.run_import_merge(:i1) AS m1 \gset
SELECT results_eq(format($$SELECT status, identities_created, stage_seconds ?& ARRAY['land', 'parse', 'merge', 'total'] FROM app.imports WHERE id = %s$$, :i1),
  $$VALUES ('completed', 3::bigint, true)$$, 'run_import_merge: completed, with its counts and stage times');
SELECT is(app.run_import_merge(:i1) ->> 'action', 'none', 'a second merge job does nothing');

-- Re-parse: a new import over the same landed rows.
SELECT app.reparse_import(:'tok', :i1, 'hermes-2') AS r1 \gset
SELECT results_eq(format($$SELECT status, source_import_id, rows_total, parser_version FROM app.imports WHERE id = %s$$, :'r1'::jsonb ->> 'id'),
  format($$VALUES ('parsing', %s::bigint, 3::bigint, 'hermes-2')$$, :i1), 'reparse: a new import reading the first one''s rows');
SELECT results_eq(format('SELECT row_number, payload->>0 FROM app.import_file_rows(%s, 1, 2)', :'r1'::jsonb ->> 'id'),
  $$VALUES (1::bigint, 'P1'), (2, 'P2')$$, 'its PARSE reads the landed rows, no re-upload');

-- The sweep: an import that lost its jobs gets them again, once.
DELETE FROM pgqueuer.pgqueuer WHERE convert_from(payload, 'UTF8')::jsonb ->> 'import_id' = :'r1'::jsonb ->> 'id';
UPDATE app.imports SET updated_at = now() - interval '1 hour' WHERE id = (:'r1'::jsonb ->> 'id')::bigint;
SELECT is(private.requeue_imports(interval '2 minutes'), 1, 'the sweep re-enqueues an idle import without jobs');
SELECT is((SELECT count(*)::int FROM pgqueuer.pgqueuer WHERE convert_from(payload, 'UTF8')::jsonb ->> 'import_id' = :'r1'::jsonb ->> 'id'),
  1, 'its PARSE job');
UPDATE app.imports SET updated_at = now() - interval '1 hour' WHERE id = (:'r1'::jsonb ->> 'id')::bigint;
SELECT is(private.requeue_imports(interval '2 minutes'), 0, 'and not again while that job is queued (idle as it is)');

-- Failures: counted; the third fails the import for good, and the sweep leaves it.
SELECT is(app.record_import_failure((:'r1'::jsonb ->> 'id')::bigint, 'parse', 'boom 1') ->> 'action', 'retry', 'a first failure: retry');
SELECT is(app.record_import_failure((:'r1'::jsonb ->> 'id')::bigint, 'parse', 'boom 2') ->> 'action', 'retry', 'a second: retry');
SELECT is(app.record_import_failure((:'r1'::jsonb ->> 'id')::bigint, 'parse', 'ValueError: boom 3') ->> 'action', 'failed',
  'the third fails the import');
SELECT results_eq(format('SELECT status, failures, error, completed_at IS NOT NULL FROM app.imports WHERE id = %s', :'r1'::jsonb ->> 'id'),
  $$VALUES ('failed', 3, 'parse failed 3 times; the last error: ValueError: boom 3', true)$$, 'failed, with the last error');
DELETE FROM pgqueuer.pgqueuer WHERE convert_from(payload, 'UTF8')::jsonb ->> 'import_id' = :'r1'::jsonb ->> 'id';
UPDATE app.imports SET updated_at = now() - interval '1 hour' WHERE id = (:'r1'::jsonb ->> 'id')::bigint;
SELECT is(private.requeue_imports(interval '2 minutes'), 0, 'the sweep gives a failed import no jobs');
SELECT is(app.record_import_failure((:'r1'::jsonb ->> 'id')::bigint, 'parse', 'late') ->> 'action', 'none',
  'a failure of a job of a failed import changes nothing');

-- Chunks: one PARSE job per 50,000 rows.
SELECT is(private.enqueue_parse_jobs(i), 3, '120,000 rows: three PARSE jobs')
  FROM (SELECT (jsonb_populate_record(NULL::app.imports, '{"id": -1, "rows_total": 120000}')).*) x,
       LATERAL (SELECT x::app.imports AS i) y;

SELECT * FROM finish();
ROLLBACK;
