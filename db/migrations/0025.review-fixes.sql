-- Review fixes (issue 19, the line-by-line review): consent ranked by recording order,
-- a scope of its own for provider accounts, bounded statements and lock waits for the
-- command API and the workers, tenant-leading indexes for two read views, and the dead
-- functions gone.
-- depends: 0021.calling-mark

-- 1. Consent: of one cell's events, the one Hermes recorded last ranks (the ledger id,
-- taken under the address's lock), not the one whose caller-given occurred_at is
-- latest (private.tg_consent_state). The cache is rebuilt by that order here, under a
-- lock that keeps new events out meanwhile (the trigger and the rebuild function of the
-- repeatable files follow the same order once applied, right after this migration).
LOCK TABLE app.consent_events IN SHARE MODE;
DELETE FROM app.consent_state;
INSERT INTO app.consent_state (tenant_id, address_hash, channel, scope, scope_ref, address,
                               last_opt_out_at, last_opt_out_id, last_opt_in_at, last_opt_in_id)
SELECT e.tenant_id, e.address_hash, e.channel, e.scope, e.scope_ref, max(e.address),
       (array_agg(e.occurred_at ORDER BY e.id DESC) FILTER (WHERE e.kind = 'opt_out'))[1],
       max(e.id) FILTER (WHERE e.kind = 'opt_out'),
       (array_agg(e.occurred_at ORDER BY e.id DESC) FILTER (WHERE e.kind = 'opt_in'))[1],
       max(e.id) FILTER (WHERE e.kind = 'opt_in')
  FROM app.consent_events e
 GROUP BY 1, 2, 3, 4, 5;

-- 2. providers:write: a tenant's own provider accounts receive the content of every
-- later message, so managing them is no longer part of keys:write (a key-management
-- key could otherwise point sends at an account it controls). A tenant's first key has
-- it; of the keys minted before, those that held every tenant scope (the first keys and
-- their equals) get it, so no tenant loses the ability; narrower keys:write keys do not.
ALTER TABLE app.api_keys DROP CONSTRAINT api_keys_scopes_check;
ALTER TABLE app.api_keys ADD CONSTRAINT api_keys_scopes_check CHECK (
  cardinality(scopes) > 0
  AND scopes <@ ARRAY['admin', 'messages:write', 'keys:write', 'read', 'compliance:write', 'imports:write',
                      'providers:write']);
COMMENT ON COLUMN app.api_keys.scopes IS
  'admin (platform), messages:write, keys:write, read, compliance:write, imports:write, providers:write.';
UPDATE app.api_keys
   SET scopes = ARRAY(SELECT DISTINCT s FROM unnest(scopes || ARRAY['providers:write']) s ORDER BY s)
 WHERE tenant_id IS NOT NULL
   AND scopes @> ARRAY['messages:write', 'keys:write', 'read']
   -- a tenant's first key (minted before compliance:write and imports:write existed, it
   -- may hold only these three): every key that could manage keys and send, so that no
   -- tenant is left unable to manage its provider accounts
   ;

-- 3. The command API's and the workers' statements and lock waits are bounded (the read
-- roles are since 0007): a statement that runs away, or waits on a lock held by a stuck
-- transaction, ends with SQLSTATE 57014 / 55P03 (the API answers 503, nothing done)
-- instead of holding a pooled connection. Role settings apply at login, cluster-wide.
-- Work that is long by nature sets its own bound for its transaction (SET LOCAL):
-- an import's LAND (api/routes/imports.py) and MERGE (workers/entrypoints/imports.py).
ALTER ROLE hermes_api SET statement_timeout = '10s';
ALTER ROLE hermes_api SET lock_timeout = '2s';
ALTER ROLE hermes_worker SET statement_timeout = '60s';
ALTER ROLE hermes_worker SET lock_timeout = '5s';

-- 4. Tenant-leading indexes for the read API (under row-level security every query is
-- tenant_id = the key's tenant): an unfiltered ?order= on api.message_attempts or
-- api.import_errors scanned every tenant's rows until the statement timeout.
CREATE INDEX message_attempts_tenant_created_idx ON app.message_attempts (tenant_id, created_at DESC, id DESC);
CREATE INDEX import_errors_tenant_import_row_idx ON app.import_errors (tenant_id, import_id, row_number);

-- 5. Dead code: nothing calls these any more (the receipt applier joins
-- private.provider_statuses set-based; every command authorizes itself).
DROP FUNCTION IF EXISTS private.advance_message(uuid, timestamptz, text, text, text, text, text);
DROP FUNCTION IF EXISTS private.twilio_status(text);
DROP FUNCTION IF EXISTS app.authenticate(text, text);
