-- PostgREST's db-pre-config function: run by PostgREST (as hermes_authenticator)
-- whenever it loads its configuration, it sets the rest of that configuration for
-- the load's transaction only. The JWT secret thus stays in private.settings and is
-- never written to a catalog (role settings in pg_db_role_setting are readable by
-- every role). make run, the tests and docker compose configure PostgREST alike:
-- db-uri plus db-pre-config = "private.postgrest_pre_config".
CREATE OR REPLACE FUNCTION private.postgrest_pre_config()
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT set_config('pgrst.jwt_secret', (SELECT value FROM private.settings WHERE key = 'jwt_secret'), true),
         set_config('pgrst.db_schemas', 'api', true),
         set_config('pgrst.db_anon_role', 'hermes_anon', true),
         set_config('pgrst.db_pre_request', 'private.check_request', true),
         set_config('pgrst.db_max_rows', '1000', true);
$$;
COMMENT ON FUNCTION private.postgrest_pre_config() IS
  'PostgREST db-pre-config: jwt secret, exposed schema, anon role, pre-request, max rows.';
GRANT EXECUTE ON FUNCTION private.postgrest_pre_config() TO hermes_authenticator;
