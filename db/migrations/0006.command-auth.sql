-- Authorization inside the command (issue: hardening the command path).
--
-- The command functions used to take a tenant id and an acting key id from the API,
-- which had authenticated the bearer token in a transaction of its own
-- (app.authenticate) and was trusted to pass the right ids. Now each app.* command
-- takes the bearer token, checks it and the scope it needs itself, in the same call
-- and transaction, and derives the tenant and the actor from the key: the hermes_api
-- role can act only for the key it presents. The tenant-id forms become private
-- (owner-only) implementations where an operator or a test still needs them
-- (private.create_tenant bootstraps the first tenant; private.submit_message[s] is
-- the intake behind the token-taking commands). The new signatures are created by
-- the repeatable files (db/functions), which run after every migration; this drops
-- the old ones where a database has them (IF EXISTS: a new database has none yet).
-- depends: 0005.receipt-inbox

-- Who a command acts for: the key the bearer token names, once it is checked.
CREATE TYPE private.principal AS (
  api_key_id uuid,
  tenant_id  uuid,
  prefix     text,
  scopes     text[]
);

DROP FUNCTION IF EXISTS app.create_tenant(uuid, text, text, text);
DROP FUNCTION IF EXISTS app.create_api_key(uuid, uuid, text, text[], timestamptz);
DROP FUNCTION IF EXISTS app.list_api_keys(uuid);
DROP FUNCTION IF EXISTS app.rotate_api_key(uuid, uuid, uuid, interval);
DROP FUNCTION IF EXISTS app.revoke_api_key(uuid, uuid, uuid);
DROP FUNCTION IF EXISTS app.submit_message(uuid, uuid, jsonb, text);
DROP FUNCTION IF EXISTS app.submit_messages(uuid, uuid, jsonb);
DROP FUNCTION IF EXISTS app.get_message(uuid, uuid);

-- Every repeatable file runs again after this migration (some were unchanged and
-- would be skipped, but their functions were dropped above).
DELETE FROM private.repeatable_applied;
