-- private.postgrest_pre_config: PostgREST's configuration, set for one transaction.
BEGIN;
\ir ../../helpers.psql
SELECT plan(9);

SELECT ok(has_function_privilege('hermes_authenticator', 'private.postgrest_pre_config()', 'EXECUTE'),
  'PostgREST''s role may run it');
SELECT ok(NOT has_function_privilege('hermes_integrator', 'private.postgrest_pre_config()', 'EXECUTE')
          AND NOT has_function_privilege('hermes_anon', 'private.postgrest_pre_config()', 'EXECUTE')
          AND NOT has_function_privilege('hermes_api', 'private.postgrest_pre_config()', 'EXECUTE'),
  'no other client role may (it reveals the JWT secret)');

SET LOCAL ROLE hermes_authenticator;
SELECT private.postgrest_pre_config() IS NULL AS configured \gset
RESET ROLE;
SELECT is(current_setting('pgrst.jwt_secret'), (SELECT value FROM private.settings WHERE key = 'jwt_secret'),
  'the JWT secret is the database''s');
SELECT is(current_setting('pgrst.db_schemas'), 'api', 'only the api schema is exposed');
SELECT is(current_setting('pgrst.db_anon_role'), 'hermes_anon', 'anonymous requests are hermes_anon');
SELECT is(current_setting('pgrst.db_pre_request'), 'private.check_request', 'the pre-request checks API keys');
SELECT is(current_setting('pgrst.db_max_rows'), '1000', 'at most 1000 rows per response');
SELECT ok(length(current_setting('pgrst.jwt_secret')) >= 32, 'the secret has at least 32 characters');
SELECT is_empty($$SELECT 1 FROM pg_db_role_setting s, unnest(s.setconfig) c WHERE c LIKE 'pgrst.%'$$,
  'nothing is written to the catalog');

SELECT * FROM finish();
ROLLBACK;
