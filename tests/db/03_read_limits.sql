-- The read roles are bounded: PostgREST applies these role settings to every request
-- (impersonated role settings), and the api views' common orders and filters have an
-- index that leads with the tenant, which every row-level-security policy fixes.
BEGIN;
\ir helpers.psql
SELECT plan(13);

CREATE FUNCTION pg_temp.role_setting(p_role text, p_name text) RETURNS text
LANGUAGE sql AS $$
  SELECT split_part(s, '=', 2) FROM pg_roles r, unnest(r.rolconfig) s
   WHERE r.rolname = p_role AND split_part(s, '=', 1) = p_name
$$;
SELECT is(pg_temp.role_setting('hermes_integrator', 'statement_timeout'), '5s',
  'an integrator''s statement is cut off after 5 s');
SELECT is(pg_temp.role_setting('hermes_integrator', 'work_mem'), '8192', 'with 8 MB of work_mem (in kB: PostgREST lowercases "8MB" into an invalid "8mb")');
SELECT is(pg_temp.role_setting('hermes_anon', 'statement_timeout'), '1s', 'an anonymous one after 1 s');
-- The command API's and the workers' roles too (0025.review-fixes): a runaway statement
-- or a wait on a stuck lock ends instead of holding a pooled connection. (LAND and an
-- import's MERGE set a longer bound for their own transaction.)
SELECT is(ARRAY[pg_temp.role_setting('hermes_api', 'statement_timeout'), pg_temp.role_setting('hermes_api', 'lock_timeout')],
  ARRAY['10s', '2s'], 'the command API: 10 s a statement, 2 s waiting for a lock');
SELECT is(ARRAY[pg_temp.role_setting('hermes_worker', 'statement_timeout'), pg_temp.role_setting('hermes_worker', 'lock_timeout')],
  ARRAY['60s', '5s'], 'the workers: 60 s a statement, 5 s waiting for a lock');

-- What PostgREST does with them: set_config(..., true) in the request's transaction.
-- Here with a tiny timeout, so that an expensive statement is cut off with 57014.
-- (WHEN OTHERS does not catch a cancel: hence query_canceled by name.)
CREATE FUNCTION pg_temp.cut_off(p_sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_state text;
  v_message text;
BEGIN
  EXECUTE p_sql;
  RETURN 'finished';
EXCEPTION WHEN query_canceled THEN
  GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT;
  RETURN v_state || ' ' || v_message;
END
$$;
SELECT set_config('statement_timeout', '200ms', true) AS timeout \gset
SELECT is(pg_temp.cut_off($$SELECT count(*) FROM generate_series(1, 500000000)$$),
  '57014 canceling statement due to statement timeout', 'an expensive statement is cut off with SQLSTATE 57014');
SELECT set_config('statement_timeout', '0', true) AS timeout \gset

-- The tenant-leading indexes serve the views' orders under RLS (no seq scan allowed,
-- so the plan shows whether an index can serve them at all).
SELECT r -> 'tenant' ->> 'id' AS t FROM pg_temp.new_tenant('Reads') r \gset
CREATE FUNCTION pg_temp.plan_of(p_sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_line text;
  v_plan text := '';
BEGIN
  FOR v_line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || p_sql LOOP
    v_plan := v_plan || v_line || E'\n';
  END LOOP;
  RETURN v_plan;
END
$$;
GRANT EXECUTE ON FUNCTION pg_temp.plan_of(text) TO hermes_integrator;
SET LOCAL enable_seqscan = off;
SET LOCAL ROLE hermes_integrator;
SELECT set_config('hermes.tenant_id', :'t', true) AS tenant_set \gset
SELECT matches(pg_temp.plan_of('SELECT * FROM api.message_events ORDER BY created_at DESC LIMIT 20'),
  'message_events_p[0-9_]+_tenant_id_created_at_id_idx', 'message_events newest first: the (tenant, created_at) index');
SELECT matches(pg_temp.plan_of(format('SELECT * FROM api.message_events WHERE message_id = %L ORDER BY id',
                                      gen_random_uuid())),
  'message_events_p[0-9_]+_tenant_id_message_id_id_idx', 'the events of one message: an index on the message');
SELECT matches(pg_temp.plan_of($$SELECT * FROM api.messages WHERE status = 'failed' ORDER BY created_at DESC LIMIT 20$$),
  'messages_p[0-9_]+_tenant_id_status_created_at_idx', 'messages by status, newest first: the (tenant, status, created_at) index');
SELECT matches(pg_temp.plan_of($$SELECT * FROM api.messages WHERE "to" = '+14155550123' ORDER BY created_at DESC LIMIT 20$$),
  'messages_p[0-9_]+_tenant_id_to_address_created_at_idx', 'messages to one recipient: the (tenant, to, created_at) index');
SELECT matches(pg_temp.plan_of('SELECT * FROM api.message_attempts ORDER BY created_at DESC LIMIT 20'),
  'message_attempts_p[0-9_]+_tenant_id_created_at_id_idx', 'attempts newest first: the (tenant, created_at) index');
SELECT matches(pg_temp.plan_of('SELECT * FROM api.import_errors ORDER BY import_id DESC, row_number LIMIT 20'),
  'import_errors_tenant_import_row_idx', 'import errors, newest import first: the (tenant, import, row) index');
SELECT matches(pg_temp.plan_of('SELECT * FROM api.import_errors ORDER BY import_id, row_number LIMIT 20'),
  'import_errors_tenant_import_row_idx', 'and oldest first');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
