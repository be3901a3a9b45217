-- app.create_admin_key: operator-only platform key.
BEGIN;
\ir ../../helpers.psql
SELECT plan(9);

SELECT app.create_admin_key('  operator  ') AS key \gset
SELECT (:'key'::jsonb) ->> 'id' AS id \gset
SELECT ok((:'key'::jsonb) ->> 'prefix' ~ '^hk_admin_[0-9a-f]{12}$', 'prefix hk_admin_');
SELECT is((:'key'::jsonb) -> 'scopes', '["admin"]'::jsonb, 'scope admin only');
SELECT is((:'key'::jsonb) ->> 'tenant_id', NULL, 'no tenant');
SELECT is((:'key'::jsonb) ->> 'name', 'operator', 'the name, trimmed');
SELECT is((private.authorize((:'key'::jsonb) ->> 'token', 'admin', false)).api_key_id::text, :'id', 'the token authenticates as admin');
SELECT results_eq(format($$SELECT tenant_id, api_key_id, action, target_id, details FROM app.audit_log
                           WHERE action = 'api_key.create' AND target_id = %L$$, :'id'),
  format($$VALUES (NULL::uuid, NULL::uuid, 'api_key.create', %L, jsonb_build_object('scopes', '["admin"]'::jsonb, 'by', current_user::text))$$, :'id'),
  'audited with the database user who ran it');
SELECT is(pg_temp.problem($$SELECT app.create_admin_key('')$$), 'HM422 invalid_name', 'an empty name: HM422 invalid_name');
SELECT is(pg_temp.problem($$SELECT app.create_admin_key(NULL)$$), 'HM422 invalid_name', 'no name: HM422 invalid_name');
SELECT ok(NOT has_function_privilege('hermes_api', 'app.create_admin_key(text)', 'EXECUTE')
          AND NOT has_function_privilege('hermes_worker', 'app.create_admin_key(text)', 'EXECUTE')
          AND NOT has_function_privilege('hermes_integrator', 'app.create_admin_key(text)', 'EXECUTE'),
  'no client role may run it');

SELECT * FROM finish();
ROLLBACK;
