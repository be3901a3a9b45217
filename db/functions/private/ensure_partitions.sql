-- Creates the monthly partitions of every range-partitioned table in schema app,
-- from last month to p_months_ahead months ahead. Idempotent; run by migrate and by
-- the pgqueuer schedule "maintenance". A partition is named <table>_pYYYY_MM and spans
-- a UTC month whatever the caller's TimeZone (pinned below).
-- Statement-level triggers are not inherited by partitions (row triggers are), so the
-- parent's -- e.g. the append-only TRUNCATE guard -- are created on every partition.
CREATE OR REPLACE FUNCTION private.ensure_partitions(p_months_ahead int DEFAULT 3)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
DECLARE
  v_trigger record;
  v_part    record;
  v_parent record;
  v_from   timestamptz;
  v_name   text;
BEGIN
  IF p_months_ahead NOT BETWEEN 0 AND 36 THEN
    PERFORM private.raise_problem(422, 'invalid_months_ahead', 'p_months_ahead must be 0..36');
  END IF;
  FOR v_parent IN
    SELECT c.relname
      FROM pg_partitioned_table p
      JOIN pg_class c ON c.oid = p.partrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'app' AND p.partstrat = 'r'
     ORDER BY c.relname
  LOOP
    FOR i IN -1..p_months_ahead LOOP
      v_from := date_trunc('month', now()) + make_interval(months => i);
      v_name := format('%s_p%s', v_parent.relname, to_char(v_from, 'YYYY_MM'));
      IF to_regclass(format('app.%I', v_name)) IS NULL THEN
        EXECUTE format('CREATE TABLE app.%I PARTITION OF app.%I FOR VALUES FROM (%L) TO (%L)',
                       v_name, v_parent.relname, v_from, v_from + interval '1 month');
        RETURN NEXT v_name;
      END IF;
    END LOOP;
  END LOOP;

  FOR v_trigger IN
    SELECT t.tgname, t.tgrelid, pg_get_triggerdef(t.oid) AS def
      FROM pg_trigger t
      JOIN pg_class c ON c.oid = t.tgrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'app' AND c.relkind = 'p' AND NOT t.tgisinternal
       AND t.tgtype & 1 = 0   -- statement-level
       AND t.tgnewtable IS NULL AND t.tgoldtable IS NULL  -- transition tables: the parent only
  LOOP
    FOR v_part IN
      SELECT i.inhrelid FROM pg_inherits i WHERE i.inhparent = v_trigger.tgrelid
    LOOP
      IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = v_part.inhrelid AND tgname = v_trigger.tgname) THEN
        EXECUTE replace(v_trigger.def, ' ON ' || v_trigger.tgrelid::regclass::text || ' ',
                        ' ON ' || v_part.inhrelid::regclass::text || ' ');
      END IF;
    END LOOP;
  END LOOP;
END
$$;
COMMENT ON FUNCTION private.ensure_partitions(int) IS
  'Creates missing monthly partitions (last month .. +N months) of app''s partitioned tables.';
