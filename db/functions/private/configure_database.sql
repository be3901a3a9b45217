-- Settings that belong to a database rather than to its schema, so that a migration
-- cannot carry them (CREATE DATABASE ... TEMPLATE does not copy them either). The
-- migrate runner calls this every time; so do the tests for each cloned database.
--   * no temporary objects for PUBLIC: a pg_temp function, type or table could shadow
--     a name inside a security-definer function (which also pin search_path to
--     pg_catalog, pg_temp); hermes_owner alone keeps TEMP: the security-definer
--     functions stage rows in ON COMMIT DROP tables (the merge, the import's COPY
--     staging), and only they act as it;
--   * no PostgREST settings stored on its role (older deployments kept the JWT secret
--     there, readable by every role); PostgREST now asks private.postgrest_pre_config.
CREATE OR REPLACE FUNCTION private.configure_database()
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
  EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO hermes_owner', current_database());
  EXECUTE format('ALTER ROLE hermes_authenticator IN DATABASE %I RESET ALL', current_database());
END
$$;
COMMENT ON FUNCTION private.configure_database() IS
  'Per-database settings: no TEMP for PUBLIC, no settings stored on hermes_authenticator. Idempotent.';
