-- private.sync_postgrest_config: PostgREST's in-database configuration, as settings
-- of hermes_authenticator in this database.
BEGIN;
\ir ../../helpers.psql
SELECT plan(5);

CREATE FUNCTION pg_temp.authenticator_settings() RETURNS SETOF text LANGUAGE sql AS $$
  SELECT unnest(s.setconfig) FROM pg_db_role_setting s
   WHERE s.setrole = 'hermes_authenticator'::regrole
     AND s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
$$;

SELECT format('ALTER ROLE hermes_authenticator IN DATABASE %I RESET ALL', current_database()) AS reset_sql \gset
:reset_sql;
SELECT is_empty('SELECT * FROM pg_temp.authenticator_settings()', 'after RESET ALL there are no settings');
SELECT private.sync_postgrest_config() IS NULL AS synced \gset
SELECT set_eq('SELECT * FROM pg_temp.authenticator_settings()',
  ARRAY['pgrst.jwt_secret=' || (SELECT value FROM private.settings WHERE key = 'jwt_secret'),
        'pgrst.db_schemas=api', 'pgrst.db_anon_role=hermes_anon',
        'pgrst.db_pre_request=private.check_request', 'pgrst.db_max_rows=1000'],
  'the five PostgREST settings, with the database''s jwt_secret');
UPDATE private.settings SET value = repeat('ab', 32) WHERE key = 'jwt_secret';
SELECT private.sync_postgrest_config() IS NULL AS synced \gset
SELECT ok('pgrst.jwt_secret=' || repeat('ab', 32) IN (SELECT * FROM pg_temp.authenticator_settings()),
  'a new secret is written on the next sync');
SELECT is((SELECT count(*)::int FROM pg_temp.authenticator_settings()), 5, 'syncing again adds no duplicates');
SELECT is_empty($$
  SELECT 1 FROM pg_db_role_setting s
   WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
     AND s.setrole <> 'hermes_authenticator'::regrole
$$, 'no other role gets settings in this database');

SELECT * FROM finish();
ROLLBACK;
