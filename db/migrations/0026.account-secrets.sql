-- Trust between tenants (issue 19), the worker and webhook side:
--   * a reconcile delay: a provider call that got no answer is not reconciled (looked
--     up, resent) before the provider can list the message;
--   * receipts remember which account's secret verified them, and are applied only to
--     an attempt of that provider and account;
--   * a tenant account's webhook-verification secret sealed apart from its credentials,
--     so that the internet-facing API opens only that.

-- An ambiguous provider call (no answer: timeout, connection lost, a 5xx at a provider
-- that can be asked) is reconciled no earlier than this: the provider lists a message
-- some time after it created it, and a lookup before that finds nothing and resends.
ALTER TABLE app.message_attempts ADD COLUMN reconcile_after timestamptz;
COMMENT ON COLUMN app.message_attempts.reconcile_after IS
  'Not reconciled before this (an ambiguous call''s outcome: the provider lists its messages late); NULL: at once.';
INSERT INTO private.settings (key, value) VALUES ('reconcile_delay', '2 minutes');

-- The tenant account whose secret verified a callback (NULL: the deployment's). A
-- receipt is stored for an attempt only when its provider is the attempt's and, at a
-- provider whose callbacks are signed per account, its account is the attempt's.
ALTER TABLE app.receipts ADD COLUMN account_id uuid;
COMMENT ON COLUMN app.receipts.account_id IS
  'The tenant provider account whose secret verified the callback; NULL: the deployment''s (or not signed per account).';
ALTER TABLE private.providers ADD COLUMN account_signed boolean NOT NULL DEFAULT true;
COMMENT ON COLUMN private.providers.account_signed IS
  'Whether the provider signs callbacks with a per-account secret (false: SES, verified by SNS for a topic the operator allowed).';
UPDATE private.providers SET account_signed = false WHERE provider = 'ses';

-- The webhook-verification secret of a tenant account (Twilio: its auth token; Vonage:
-- its api key and signature secret; WhatsApp: its app secret), sealed on its own with
-- associated data of its own (hermes/credentials.py): the API opens only this, never
-- the credentials that send. Accounts stored before this migration are re-sealed by
-- `python -m hermes.migrate` when the deployment's keys are in its environment
-- (hermes/migrate.py reseal_webhook_secrets), and by a worker the first time it opens
-- the account (before it sends anything whose callbacks need it).
ALTER TABLE app.provider_accounts
  ADD COLUMN webhook_secret bytea CHECK (length(webhook_secret) BETWEEN 29 AND 16384),
  ADD COLUMN webhook_key_id text CHECK (webhook_key_id ~ '^[A-Za-z0-9_-]{1,32}$'),
  ADD CONSTRAINT provider_accounts_webhook_sealed_check
    CHECK ((webhook_secret IS NULL) = (webhook_key_id IS NULL));
COMMENT ON COLUMN app.provider_accounts.webhook_secret IS
  'nonce || ciphertext || tag of the account''s webhook-verification secret alone (the API opens this, not credentials).';
