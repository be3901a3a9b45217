-- app.suppressions follows app.suppression_events: per (tenant, address, list) the
-- latest event decides (and the row is that event's: address, reason, time) -- 'add' puts the address on the list, 'remove' takes it off
-- (an erasure tombstone is never removed: app.remove_suppressions refuses it).
-- A statement trigger with a transition table: set-based whatever the rows.
CREATE OR REPLACE FUNCTION private.tg_suppressions()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  WITH latest AS (
    SELECT DISTINCT ON (e.tenant_id, e.address_hash, e.list) e.*
      FROM new_events e
     ORDER BY e.tenant_id, e.address_hash, e.list, e.id DESC
  ), removed AS (
    DELETE FROM app.suppressions s
     USING latest l
     WHERE l.action = 'remove' AND s.tenant_id IS NOT DISTINCT FROM l.tenant_id
       AND s.address_hash = l.address_hash AND s.list = l.list
  )
  INSERT INTO app.suppressions AS s (tenant_id, address_hash, list, address, event_id, reason, added_at)
  SELECT l.tenant_id, l.address_hash, l.list, l.address, l.id, l.reason, l.recorded_at
    FROM latest l
   WHERE l.action = 'add'
  ON CONFLICT (tenant_id, address_hash, list) DO UPDATE
    SET address = excluded.address, event_id = excluded.event_id, reason = excluded.reason,
        added_at = excluded.added_at;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION private.tg_suppressions() IS
  'Statement trigger of app.suppression_events: adds to / removes from app.suppressions.';

-- app.suppressions as the ledger defines it (what the cache must equal).
CREATE OR REPLACE FUNCTION private.suppressions_from_ledger()
RETURNS TABLE (tenant_id uuid, address_hash bytea, list text, address text, event_id bigint,
               reason text, added_at timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT l.tenant_id, l.address_hash, l.list, l.address, l.id, l.reason, l.recorded_at
    FROM (SELECT DISTINCT ON (e.tenant_id, e.address_hash, e.list) e.*
            FROM app.suppression_events e
           ORDER BY e.tenant_id, e.address_hash, e.list, e.id DESC) l
   WHERE l.action = 'add'
$$;
COMMENT ON FUNCTION private.suppressions_from_ledger() IS
  'The current suppressions recomputed from the ledger (the definition app.suppressions caches).';

-- Rebuilds the cache from the ledger. Returns the number of suppressed entries.
CREATE OR REPLACE FUNCTION private.rebuild_suppressions()
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_rows bigint;
BEGIN
  LOCK TABLE app.suppression_events IN SHARE MODE;
  DELETE FROM app.suppressions;
  INSERT INTO app.suppressions (tenant_id, address_hash, list, address, event_id, reason, added_at)
  SELECT * FROM private.suppressions_from_ledger();
  GET DIAGNOSTICS v_rows = ROW_COUNT;
  RETURN v_rows;
END
$$;
COMMENT ON FUNCTION private.rebuild_suppressions() IS 'Recomputes app.suppressions from app.suppression_events.';
