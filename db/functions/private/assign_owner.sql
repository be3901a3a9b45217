-- Hands Hermes's objects to hermes_owner (migration 0008): every table, partition,
-- view, sequence, type and function of app, private, api and pgqueuer that another role
-- owns. hermes.migrate runs it after the migrations and the repeatable files (which the
-- database owner creates), so the SECURITY DEFINER commands run as hermes_owner
-- (NOSUPERUSER BYPASSRLS), not as a superuser. Not SECURITY DEFINER: only a role that
-- may change those owners (the database owner, a superuser) can run it. Idempotent;
-- returns how many objects changed hands.
CREATE OR REPLACE FUNCTION private.assign_owner()
RETURNS int
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_owner oid := 'hermes_owner'::regrole;
  v_obj   record;
  v_n     int := 0;
BEGIN
  -- Tables (partitions included: ownership does not cascade to them), views; a table
  -- takes its indexes and the sequences it owns along.
  FOR v_obj IN
    SELECT c.oid::regclass AS rel, c.relkind
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname IN ('app', 'private', 'api', 'pgqueuer') AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
       AND c.relowner <> v_owner
     ORDER BY c.relkind = 'v', c.oid
  LOOP
    EXECUTE format('ALTER %s %s OWNER TO hermes_owner',
                   CASE v_obj.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                      WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, v_obj.rel);
    v_n := v_n + 1;
  END LOOP;
  -- Sequences no table owns.
  FOR v_obj IN
    SELECT c.oid::regclass AS rel
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname IN ('app', 'private', 'api', 'pgqueuer') AND c.relkind = 'S' AND c.relowner <> v_owner
  LOOP
    EXECUTE format('ALTER SEQUENCE %s OWNER TO hermes_owner', v_obj.rel);
    v_n := v_n + 1;
  END LOOP;
  -- Types of their own (enums, composites declared with CREATE TYPE), not a table's row type.
  FOR v_obj IN
    SELECT t.oid::regtype AS typ
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
      LEFT JOIN pg_class c ON c.oid = t.typrelid
     WHERE n.nspname IN ('app', 'private', 'api', 'pgqueuer') AND t.typowner <> v_owner
       AND t.typelem = 0 AND (t.typtype IN ('e', 'd') OR (t.typtype = 'c' AND c.relkind = 'c'))
  LOOP
    EXECUTE format('ALTER TYPE %s OWNER TO hermes_owner', v_obj.typ);
    v_n := v_n + 1;
  END LOOP;
  FOR v_obj IN
    SELECT p.oid::regprocedure AS fn, p.prokind
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname IN ('app', 'private', 'api', 'pgqueuer') AND p.proowner <> v_owner
  LOOP
    EXECUTE format('ALTER %s %s OWNER TO hermes_owner',
                   CASE v_obj.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END,
                   v_obj.fn);
    v_n := v_n + 1;
  END LOOP;
  RETURN v_n;
END
$$;
COMMENT ON FUNCTION private.assign_owner() IS
  'Gives every table, view, sequence, type and function of app, private, api and pgqueuer to hermes_owner.';
