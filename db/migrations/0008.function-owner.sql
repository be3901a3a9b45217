-- A dedicated owner for Hermes's objects (issue: hardening the command path, item 4).
--
-- The SECURITY DEFINER command functions ran as the superuser that ran the migrations:
-- a bug in one of them (a dynamic statement, a search_path slip) had every power of
-- the cluster. They now run as hermes_owner: NOSUPERUSER, NOLOGIN, BYPASSRLS (the tables
-- FORCE row-level security and have no policy for their owner; the commands see every
-- tenant's rows and decide in SQL which they may touch). It owns the tables, views,
-- sequences, types and functions of app, private, api and pgqueuer -- it must own the
-- partitioned tables, since private.ensure_partitions (run by app.run_maintenance)
-- creates their partitions. The migrations still run as the database owner;
-- hermes.migrate hands everything to hermes_owner afterwards (private.assign_owner),
-- in make run, compose and the tests alike.
-- depends: 0007.read-api-limits

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'hermes_owner') THEN
    CREATE ROLE hermes_owner NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION BYPASSRLS;
  END IF;
END
$$;
GRANT USAGE ON SCHEMA app, private, api, pgqueuer TO hermes_owner;
GRANT CREATE ON SCHEMA app TO hermes_owner;  -- new partitions
