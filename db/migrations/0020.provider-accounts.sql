-- A tenant's own provider accounts (its Twilio account, its SES credentials ...),
-- sealed: the credentials are AES-256-GCM ciphertext made by the command API with a key
-- the database never sees (hermes/credentials.py); key_id names that key. One active
-- account per tenant and provider; a step routed to a provider goes through the
-- tenant's account for it when there is one, else through the deployment's.
CREATE TABLE app.provider_accounts (
  id           uuid PRIMARY KEY,
  tenant_id    uuid NOT NULL REFERENCES app.tenants (id),
  provider     text NOT NULL REFERENCES private.providers (provider),
  name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  credentials  bytea NOT NULL CHECK (length(credentials) BETWEEN 29 AND 65536),
  key_id       text NOT NULL CHECK (key_id ~ '^[A-Za-z0-9_-]{1,32}$'),
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  disabled_at  timestamptz
);
CREATE UNIQUE INDEX provider_accounts_active_idx ON app.provider_accounts (tenant_id, provider)
  WHERE disabled_at IS NULL;
COMMENT ON TABLE app.provider_accounts IS
  'A tenant''s provider accounts; credentials sealed (AES-256-GCM, key outside the database), never readable by clients.';
COMMENT ON COLUMN app.provider_accounts.credentials IS
  'nonce || ciphertext || tag; associated data binds it to (id, provider).';
ALTER TABLE app.provider_accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.provider_accounts FORCE ROW LEVEL SECURITY;
CREATE POLICY provider_accounts_integrator_select ON app.provider_accounts FOR SELECT TO hermes_integrator
  USING (tenant_id = nullif(current_setting('hermes.tenant_id', true), '')::uuid);
REVOKE ALL ON app.provider_accounts FROM PUBLIC;
-- The read API shows which accounts exist, never their credentials (column grant).
GRANT SELECT (id, tenant_id, provider, name, created_at, updated_at, disabled_at)
  ON app.provider_accounts TO hermes_integrator, hermes_anon;

-- The account a step is sent through (NULL: the deployment's own for its provider).
ALTER TABLE app.message_attempts ADD COLUMN provider_account_id uuid;
COMMENT ON COLUMN app.message_attempts.provider_account_id IS
  'The tenant''s provider account the step goes through; NULL: the deployment''s (and always for sandbox tenants).';
