-- Roles and schemas.
--
-- Roles are cluster-wide, so they are created only when missing (many databases of
-- one cluster -- tests, dev, prod -- share them). Schemas:
--   app      tables and the command functions the API and workers call
--   private  helpers, trigger functions, security-definer internals; no client grant
--   api      the read-only views PostgREST serves
--
-- Login roles:
--   hermes_api            the command API: EXECUTE on its app.* functions, no table rights
--   hermes_worker         the workers: EXECUTE on their app.* functions, pgqueuer tables
--   hermes_authenticator  PostgREST's connection role (NOINHERIT), switches to:
--     hermes_integrator   a request with a valid API key (RLS limits it to one tenant)
--     hermes_anon         a request without a key (sees no rows)
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'hermes_api') THEN
    CREATE ROLE hermes_api LOGIN NOSUPERUSER NOBYPASSRLS;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'hermes_worker') THEN
    CREATE ROLE hermes_worker LOGIN NOSUPERUSER NOBYPASSRLS;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'hermes_authenticator') THEN
    CREATE ROLE hermes_authenticator LOGIN NOINHERIT NOSUPERUSER NOBYPASSRLS;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'hermes_integrator') THEN
    CREATE ROLE hermes_integrator NOLOGIN NOSUPERUSER NOBYPASSRLS;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'hermes_anon') THEN
    CREATE ROLE hermes_anon NOLOGIN NOSUPERUSER NOBYPASSRLS;
  END IF;
END
$$;

GRANT hermes_integrator, hermes_anon TO hermes_authenticator;

-- Nothing lives in public, and nobody but the owner may create there.
REVOKE ALL ON SCHEMA public FROM PUBLIC;

-- Functions created from here on are not executable by PUBLIC unless granted.
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

CREATE SCHEMA app;
CREATE SCHEMA private;
CREATE SCHEMA api;

-- Which repeatable files (db/functions, db/views) are applied, by content hash.
CREATE TABLE private.repeatable_applied (
  path       text PRIMARY KEY,
  sha256     text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON SCHEMA app IS 'Hermes tables and the command functions called by the API and workers.';
COMMENT ON SCHEMA private IS 'Hermes internals: helpers, trigger functions, settings. Not granted to clients.';
COMMENT ON SCHEMA api IS 'Hermes read API: views served by PostgREST, one tenant per request.';

REVOKE ALL ON SCHEMA app, private, api FROM PUBLIC;
GRANT USAGE ON SCHEMA app TO hermes_api, hermes_worker, hermes_integrator, hermes_anon;
GRANT USAGE ON SCHEMA api TO hermes_integrator, hermes_anon;
-- Only for private.check_request() (PostgREST's pre-request function) and
-- private.postgrest_pre_config() (its configuration).
GRANT USAGE ON SCHEMA private TO hermes_integrator, hermes_anon, hermes_authenticator;
