-- Functions reading the columns are applied again (in their older form) by the next migrate.
DROP FUNCTION IF EXISTS app.provider_account_webhook_secrets(uuid[]);
DROP FUNCTION IF EXISTS app.fill_webhook_secrets(jsonb);
DROP FUNCTION IF EXISTS app.inbound_provider_account(text, uuid, text);
DROP FUNCTION IF EXISTS app.set_provider_account(text, uuid, text, text, bytea, text, bytea, text);
-- (its return type changed: the older CREATE OR REPLACE could not replace it)
DROP FUNCTION IF EXISTS app.provider_account_credentials(uuid[]);
ALTER TABLE app.provider_accounts DROP CONSTRAINT provider_accounts_webhook_sealed_check,
  DROP COLUMN webhook_secret, DROP COLUMN webhook_key_id;
ALTER TABLE private.providers DROP COLUMN account_signed;
ALTER TABLE app.receipts DROP COLUMN account_id;
DELETE FROM private.settings WHERE key = 'reconcile_delay';
ALTER TABLE app.message_attempts DROP COLUMN reconcile_after;
DELETE FROM private.repeatable_applied;
