-- PostgREST reads its configuration from the database (db-config, "in-database
-- configuration"): settings of its authenticator role in this database. Keeping the
-- JWT secret, the exposed schema, the anonymous role and the pre-request here means
-- every deployment (make run, tests, docker compose) configures PostgREST the same
-- way, and the secret never leaves the database. Run by the migrate runner; then
-- NOTIFY pgrst, 'reload config'.
CREATE OR REPLACE FUNCTION private.sync_postgrest_config()
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_settings constant jsonb := jsonb_build_object(
    'pgrst.jwt_secret', (SELECT value FROM private.settings WHERE key = 'jwt_secret'),
    'pgrst.db_schemas', 'api',
    'pgrst.db_anon_role', 'hermes_anon',
    'pgrst.db_pre_request', 'private.check_request',
    'pgrst.db_max_rows', '1000');
  v_name text;
  v_value text;
BEGIN
  FOR v_name, v_value IN SELECT * FROM jsonb_each_text(v_settings) LOOP
    EXECUTE format('ALTER ROLE hermes_authenticator IN DATABASE %I SET %s = %L',
                   current_database(), v_name, v_value);
  END LOOP;
END
$$;
COMMENT ON FUNCTION private.sync_postgrest_config() IS
  'Writes PostgREST''s in-database configuration (jwt secret, schema, anon role, pre-request).';
