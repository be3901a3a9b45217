-- The token-taking commands and their helpers; the tenant-id forms come back with the
-- repeatable files of the checkout that is migrated to (they are CREATE OR REPLACE).
DROP FUNCTION IF EXISTS app.create_tenant(text, text, text, text);
DROP FUNCTION IF EXISTS app.create_api_key(text, text, text[], timestamptz);
DROP FUNCTION IF EXISTS app.list_api_keys(text);
DROP FUNCTION IF EXISTS app.rotate_api_key(text, uuid, interval);
DROP FUNCTION IF EXISTS app.revoke_api_key(text, uuid);
DROP FUNCTION IF EXISTS app.submit_message(text, jsonb, text);
DROP FUNCTION IF EXISTS app.submit_messages(text, jsonb);
DROP FUNCTION IF EXISTS app.get_message(text, uuid);
DROP FUNCTION IF EXISTS private.create_tenant(uuid, text, text, text);
DROP FUNCTION IF EXISTS private.submit_message(uuid, uuid, jsonb, text);
DROP FUNCTION IF EXISTS private.submit_messages(uuid, uuid, jsonb);
DROP FUNCTION IF EXISTS private.authorize(text, text, boolean);
DROP FUNCTION IF EXISTS private.check_api_key(text, text);
DROP TYPE private.principal CASCADE;
DELETE FROM private.repeatable_applied;
