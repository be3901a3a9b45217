-- app.consent_state follows app.consent_events: per (tenant, address, channel, scope,
-- scope_ref) cell, the latest recorded opt-out and opt-in -- by ledger id, which
-- private.record_consents takes under the address's lock, so a higher id was recorded
-- later -- with their occurred_at (evidence). The caller's occurred_at never ranks an
-- event: an opt-in dated ahead would otherwise outrank every STOP recorded after it.
-- A statement trigger with a transition table: one upsert per inserting statement.
-- Global cells (tenant_id NULL) share the unique index (NULLS NOT DISTINCT).
CREATE OR REPLACE FUNCTION private.tg_consent_state()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  INSERT INTO app.consent_state AS s (tenant_id, address_hash, channel, scope, scope_ref, address,
                                      last_opt_out_at, last_opt_out_id, last_opt_in_at, last_opt_in_id)
  SELECT e.tenant_id, e.address_hash, e.channel, e.scope, e.scope_ref, max(e.address),
         (array_agg(e.occurred_at ORDER BY e.id DESC) FILTER (WHERE e.kind = 'opt_out'))[1],
         (array_agg(e.id ORDER BY e.id DESC) FILTER (WHERE e.kind = 'opt_out'))[1],
         (array_agg(e.occurred_at ORDER BY e.id DESC) FILTER (WHERE e.kind = 'opt_in'))[1],
         (array_agg(e.id ORDER BY e.id DESC) FILTER (WHERE e.kind = 'opt_in'))[1]
    FROM new_events e
   GROUP BY 1, 2, 3, 4, 5
  ON CONFLICT (tenant_id, address_hash, channel, scope, scope_ref) DO UPDATE SET
    address = coalesce(excluded.address, s.address),
    -- Each pair moves only to a later recorded one (a NULL pair in excluded compares NULL: kept).
    (last_opt_out_at, last_opt_out_id) = (
      CASE WHEN s.last_opt_out_id IS NULL OR excluded.last_opt_out_id > s.last_opt_out_id
           THEN excluded.last_opt_out_at ELSE s.last_opt_out_at END,
      CASE WHEN s.last_opt_out_id IS NULL OR excluded.last_opt_out_id > s.last_opt_out_id
           THEN excluded.last_opt_out_id ELSE s.last_opt_out_id END),
    (last_opt_in_at, last_opt_in_id) = (
      CASE WHEN s.last_opt_in_id IS NULL OR excluded.last_opt_in_id > s.last_opt_in_id
           THEN excluded.last_opt_in_at ELSE s.last_opt_in_at END,
      CASE WHEN s.last_opt_in_id IS NULL OR excluded.last_opt_in_id > s.last_opt_in_id
           THEN excluded.last_opt_in_id ELSE s.last_opt_in_id END),
    updated_at = now();
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION private.tg_consent_state() IS
  'Statement trigger of app.consent_events: upserts the latest opt-out/opt-in per cell into app.consent_state.';

-- app.consent_state as the ledger defines it (what the cache must equal).
CREATE OR REPLACE FUNCTION private.consent_state_from_ledger()
RETURNS TABLE (tenant_id uuid, address_hash bytea, channel text, scope text, scope_ref text, address text,
               last_opt_out_at timestamptz, last_opt_out_id bigint,
               last_opt_in_at timestamptz, last_opt_in_id bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT e.tenant_id, e.address_hash, e.channel, e.scope, e.scope_ref, max(e.address),
         (array_agg(e.occurred_at ORDER BY e.id DESC) FILTER (WHERE e.kind = 'opt_out'))[1],
         (array_agg(e.id ORDER BY e.id DESC) FILTER (WHERE e.kind = 'opt_out'))[1],
         (array_agg(e.occurred_at ORDER BY e.id DESC) FILTER (WHERE e.kind = 'opt_in'))[1],
         (array_agg(e.id ORDER BY e.id DESC) FILTER (WHERE e.kind = 'opt_in'))[1]
    FROM app.consent_events e
   GROUP BY 1, 2, 3, 4, 5
$$;
COMMENT ON FUNCTION private.consent_state_from_ledger() IS
  'Current consent per cell recomputed from the ledger (the definition app.consent_state caches).';

-- Rebuilds the cache from the ledger (after a restore, or to repair a drift). Under a
-- lock that keeps new events out meanwhile. Returns the number of cells.
CREATE OR REPLACE FUNCTION private.rebuild_consent_state()
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_cells bigint;
BEGIN
  LOCK TABLE app.consent_events IN SHARE MODE;
  DELETE FROM app.consent_state;
  INSERT INTO app.consent_state (tenant_id, address_hash, channel, scope, scope_ref, address,
                                 last_opt_out_at, last_opt_out_id, last_opt_in_at, last_opt_in_id)
  SELECT * FROM private.consent_state_from_ledger();
  GET DIAGNOSTICS v_cells = ROW_COUNT;
  RETURN v_cells;
END
$$;
COMMENT ON FUNCTION private.rebuild_consent_state() IS 'Recomputes app.consent_state from app.consent_events.';
