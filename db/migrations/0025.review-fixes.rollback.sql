-- Back to before the review fixes. The dropped functions (private.advance_message,
-- private.twilio_status, app.authenticate) are not restored: nothing calls them. The
-- consent cache keeps its cells; the older trigger ranks new events by occurred_at
-- again once its repeatable file is applied (private.rebuild_consent_state recomputes).
DROP INDEX IF EXISTS app.import_errors_tenant_import_row_idx;
DROP INDEX IF EXISTS app.message_attempts_tenant_created_idx;
ALTER ROLE hermes_worker RESET lock_timeout;
ALTER ROLE hermes_worker RESET statement_timeout;
ALTER ROLE hermes_api RESET lock_timeout;
ALTER ROLE hermes_api RESET statement_timeout;
-- A key that held providers:write alone keeps a harmless scope and is revoked.
UPDATE app.api_keys SET scopes = ARRAY['read'], revoked_at = coalesce(revoked_at, now())
 WHERE scopes = ARRAY['providers:write'];
UPDATE app.api_keys SET scopes = array_remove(scopes, 'providers:write') WHERE 'providers:write' = ANY (scopes);
ALTER TABLE app.api_keys DROP CONSTRAINT api_keys_scopes_check;
ALTER TABLE app.api_keys ADD CONSTRAINT api_keys_scopes_check CHECK (
  cardinality(scopes) > 0
  AND scopes <@ ARRAY['admin', 'messages:write', 'keys:write', 'read', 'compliance:write', 'imports:write']);
COMMENT ON COLUMN app.api_keys.scopes IS
  'admin (platform), messages:write, keys:write, read, compliance:write, imports:write.';
