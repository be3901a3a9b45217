-- Functions reading the column and the table go with them; every repeatable file is
-- applied again by the next migrate.
DROP VIEW IF EXISTS api.provider_accounts;
DROP VIEW IF EXISTS api.message_attempts;
DROP FUNCTION IF EXISTS app.set_provider_account(text, uuid, text, text, bytea, text),
  app.disable_provider_account(text, uuid), app.provider_account_credentials(uuid[]);
ALTER TABLE app.message_attempts DROP COLUMN provider_account_id;
DROP TABLE app.provider_accounts;
DELETE FROM private.repeatable_applied;
