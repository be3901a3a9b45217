-- private.configure_database: per-database settings a migration cannot carry.
BEGIN;
\ir ../../helpers.psql
SELECT plan(5);

SELECT format('GRANT TEMPORARY ON DATABASE %I TO PUBLIC', current_database()) AS grant_sql \gset
:grant_sql;
SELECT format('ALTER ROLE hermes_authenticator IN DATABASE %I SET pgrst.jwt_secret = %L',
              current_database(), 'leaked-secret-of-an-older-deployment') AS leak_sql \gset
:leak_sql;
SELECT ok(has_database_privilege('hermes_api', current_database(), 'TEMPORARY'),
  'with TEMP granted to PUBLIC, hermes_api could create temporary objects');
SELECT lives_ok('SELECT private.configure_database()', 'configure_database runs');
SELECT ok(NOT has_database_privilege('hermes_api', current_database(), 'TEMPORARY'),
  'afterwards it cannot: TEMP is revoked from PUBLIC');
SELECT is_empty($$SELECT 1 FROM pg_db_role_setting s
                   WHERE s.setrole = 'hermes_authenticator'::regrole
                     AND s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())$$,
  'no settings are stored on hermes_authenticator (pg_db_role_setting is readable by every role)');
SELECT lives_ok('SELECT private.configure_database()', 'and it is idempotent');

SELECT * FROM finish();
ROLLBACK;
