-- app.consent_state, the cache of the consent ledger: per cell (tenant, address,
-- channel, scope, scope_ref) the last recorded opt-out and opt-in (by ledger id),
-- maintained by a statement trigger, equal to private.consent_state_from_ledger()
-- whatever order and batches events come in, and rebuildable.
BEGIN;
\ir ../../helpers.psql
SELECT plan(12);

SELECT (pg_temp.new_tenant('Cache Co') -> 'tenant' ->> 'id') AS t \gset
SELECT (pg_temp.new_tenant('Other Co') -> 'tenant' ->> 'id') AS u \gset

CREATE FUNCTION pg_temp.cache_is_ledger() RETURNS boolean LANGUAGE sql AS $$
  SELECT NOT EXISTS (
    (SELECT tenant_id, address_hash, channel, scope, scope_ref, address, last_opt_out_at, last_opt_out_id,
            last_opt_in_at, last_opt_in_id FROM app.consent_state
     EXCEPT SELECT * FROM private.consent_state_from_ledger())
    UNION ALL
    (SELECT * FROM private.consent_state_from_ledger()
     EXCEPT SELECT tenant_id, address_hash, channel, scope, scope_ref, address, last_opt_out_at, last_opt_out_id,
            last_opt_in_at, last_opt_in_id FROM app.consent_state))
$$;

SELECT pg_temp.consent(:'t', '[{"address": "+14155550100", "kind": "opt_out", "channel": "sms", "occurred_at": "2026-03-01T00:00:00Z"}]') IS NOT NULL AS a \gset
SELECT results_eq($$SELECT channel, scope, scope_ref, address, last_opt_out_at, last_opt_in_at FROM app.consent_state$$,
  $$VALUES ('sms', 'tenant', '', '+14155550100', '2026-03-01T00:00:00Z'::timestamptz, NULL::timestamptz)$$,
  'an opt-out makes a cell with its time');

-- The cell's event of each kind is the one recorded last, whatever occurred_at it claims
-- (evidence, kept beside it): an opt-out dated earlier but recorded later is the cell's.
SELECT pg_temp.consent(:'t', '[{"address": "+14155550100", "kind": "opt_out", "channel": "sms", "occurred_at": "2026-02-01T00:00:00Z"},
                              {"address": "+14155550100", "kind": "opt_in", "channel": "sms", "occurred_at": "2026-04-01T00:00:00Z"},
                              {"address": "+14155550100", "kind": "opt_in", "channel": "sms", "occurred_at": "2026-03-15T00:00:00Z"}]') IS NOT NULL AS b \gset
SELECT results_eq($$SELECT last_opt_out_at, last_opt_in_at FROM app.consent_state$$,
  $$VALUES ('2026-02-01T00:00:00Z'::timestamptz, '2026-03-15T00:00:00Z'::timestamptz)$$,
  'the last recorded of each kind, not the one with the latest occurred_at');
SELECT ok(pg_temp.cache_is_ledger(), 'the cache equals the ledger''s definition');

-- Same instant twice: the later recorded (higher id) is the cell's event too.
SELECT pg_temp.consent(:'t', '[{"address": "+14155550100", "kind": "opt_out", "channel": "sms", "occurred_at": "2026-03-01T00:00:00Z"}]') -> 0 -> 'event' ->> 'id' AS tie \gset
SELECT is((SELECT last_opt_out_id FROM app.consent_state), :'tie'::bigint, 'the later recorded one (the higher id), same occurred_at or not');

-- Cells: per channel, scope and tenant; global ones have no tenant.
SELECT pg_temp.consent(:'t', '[{"address": "+14155550100", "kind": "opt_out", "channel": "all"},
                              {"address": "+14155550100", "kind": "opt_out", "scope": "vertical", "vertical": "solar"},
                              {"address": "+14155550100", "kind": "opt_out", "scope": "sender", "sender": "+15005550006"}]') IS NOT NULL AS c \gset
SELECT pg_temp.consent(:'u', '[{"address": "+14155550100", "kind": "opt_out"}]') IS NOT NULL AS d \gset
SELECT pg_temp.consent(NULL, '[{"address": "+14155550100", "kind": "opt_out", "channel": "sms"},
                             {"address": "+14155550100", "kind": "opt_in", "channel": "sms"}]') IS NOT NULL AS e \gset
SELECT set_eq($$SELECT tenant_id, channel, scope, scope_ref FROM app.consent_state$$,
  format($$VALUES (%L::uuid, 'sms', 'tenant', ''), (%L::uuid, 'all', 'tenant', ''), (%L::uuid, 'all', 'vertical', 'solar'),
                  (%L::uuid, 'all', 'sender', '+15005550006'), (%L::uuid, 'all', 'tenant', ''), (NULL, 'sms', 'global', '')$$,
         :'t', :'t', :'t', :'t', :'u'),
  'one cell per tenant, channel, scope and scope reference; one global cell (two events in one statement)');
SELECT ok(pg_temp.cache_is_ledger(), 'still equal to the ledger');

-- Random histories, in random batches: the cache always equals the ledger.
SELECT setseed(0.42) IS NOT NULL AS seeded \gset
DO $$
DECLARE
  v_t uuid := (SELECT id FROM app.tenants WHERE name = 'Cache Co');
  v_batch jsonb;
BEGIN
  FOR b IN 1..40 LOOP
    SELECT jsonb_agg(jsonb_build_object(
             'address', '+1415555' || (1100 + (random() * 5)::int)::text,
             'kind', CASE WHEN random() < 0.5 THEN 'opt_in' ELSE 'opt_out' END,
             'channel', (ARRAY['sms', 'all', 'email'])[1 + (random() * 2)::int],
             'occurred_at', '2026-01-01T00:00:00Z'::timestamptz + (random() * 1000)::int * interval '1 minute'))
      INTO v_batch FROM generate_series(1, 1 + (random() * 8)::int);
    PERFORM private.record_consents(v_t, NULL, v_batch);
  END LOOP;
END
$$;
SELECT cmp_ok((SELECT count(*)::int FROM app.consent_events), '>', 100, 'a random history of over 100 events');
SELECT ok(pg_temp.cache_is_ledger(), 'the cache equals the ledger after 40 random batches');

-- Rebuild: the same cells from scratch.
CREATE TEMP TABLE cache_before AS SELECT tenant_id, address_hash, channel, scope, scope_ref, address,
  last_opt_out_at, last_opt_out_id, last_opt_in_at, last_opt_in_id FROM app.consent_state;
UPDATE app.consent_state SET last_opt_in_at = NULL, last_opt_in_id = NULL;   -- a drift
SELECT ok(NOT pg_temp.cache_is_ledger(), 'a drifted cache is told apart from the ledger');
SELECT is(private.rebuild_consent_state(), (SELECT count(*) FROM cache_before), 'rebuild returns the number of cells');
SELECT set_eq($$SELECT tenant_id, address_hash, channel, scope, scope_ref, address, last_opt_out_at, last_opt_out_id,
                       last_opt_in_at, last_opt_in_id FROM app.consent_state$$,
  'SELECT * FROM cache_before', 'and restores exactly the cells the trigger had built');
SELECT ok(pg_temp.cache_is_ledger(), 'equal to the ledger again');

SELECT * FROM finish();
ROLLBACK;
