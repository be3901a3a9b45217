-- A tenant's own provider accounts (providers:write, a scope of its own: an account
-- receives the content of every later message, so a key that manages API keys must
-- not be able to point sends at an account it controls). The
-- command API seals the credentials (hermes/credentials.py) under an id it chose, so
-- the ciphertext is bound to it; SQL stores ciphertext only and never answers it to
-- the API. The account's webhook-verification secret (Twilio: its auth token; Vonage:
-- its api key and signature secret; WhatsApp: its app secret; {} for the others) is
-- sealed apart, with associated data of its own: the internet-facing API opens only
-- that (app.provider_account_webhook_secrets), the workers the credentials
-- (app.provider_account_credentials). Setting an account for a provider replaces
-- (disables) the tenant's previous one for it; steps accepted from then on go through
-- the new one.
DROP FUNCTION IF EXISTS app.set_provider_account(text, uuid, text, text, bytea, text);
CREATE OR REPLACE FUNCTION app.set_provider_account(
  p_token text, p_id uuid, p_provider text, p_name text, p_credentials bytea, p_key_id text,
  p_webhook_secret bytea, p_webhook_key_id text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_who     private.principal := private.authorize(p_token, 'providers:write');
  v_account app.provider_accounts;
  v_old     uuid;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM private.providers p WHERE p.provider = p_provider) THEN
    PERFORM private.raise_problem(422, 'unknown_provider', format('Unknown provider %s.', left(p_provider, 40)),
      format('The providers: %s.', (SELECT string_agg(p.provider, ', ' ORDER BY p.provider) FROM private.providers p)));
  END IF;
  IF p_name IS NULL OR length(p_name) NOT BETWEEN 1 AND 100 THEN
    PERFORM private.raise_problem(422, 'invalid_name', 'The account name takes 1 to 100 characters.');
  END IF;
  IF p_id IS NULL OR p_credentials IS NULL OR length(p_credentials) NOT BETWEEN 29 AND 65536
     OR p_key_id IS NULL OR p_key_id !~ '^[A-Za-z0-9_-]{1,32}$'
     OR p_webhook_secret IS NULL OR length(p_webhook_secret) NOT BETWEEN 29 AND 16384
     OR p_webhook_key_id IS NULL OR p_webhook_key_id !~ '^[A-Za-z0-9_-]{1,32}$' THEN
    PERFORM private.raise_problem(422, 'invalid_credentials', 'The sealed credentials are malformed.');
  END IF;
  UPDATE app.provider_accounts SET disabled_at = now(), updated_at = now()
   WHERE tenant_id = v_who.tenant_id AND provider = p_provider AND disabled_at IS NULL
  RETURNING id INTO v_old;
  INSERT INTO app.provider_accounts (id, tenant_id, provider, name, credentials, key_id,
                                     webhook_secret, webhook_key_id)
  VALUES (p_id, v_who.tenant_id, p_provider, p_name, p_credentials, p_key_id,
          p_webhook_secret, p_webhook_key_id)
  RETURNING * INTO v_account;
  PERFORM private.audit(v_who.tenant_id, v_who.api_key_id, 'provider_account.set', p_id::text,
                        jsonb_build_object('provider', p_provider, 'name', p_name, 'replaces', v_old));
  RETURN jsonb_build_object('id', v_account.id, 'provider', v_account.provider, 'name', v_account.name,
                            'created_at', v_account.created_at, 'replaces', v_old);
END
$$;
COMMENT ON FUNCTION app.set_provider_account(text, uuid, text, text, bytea, text, bytea, text) IS
  'Stores a tenant''s provider account (sealed credentials, sealed webhook secret), replacing its active one for that provider (providers:write).';
GRANT EXECUTE ON FUNCTION app.set_provider_account(text, uuid, text, text, bytea, text, bytea, text) TO hermes_api;

CREATE OR REPLACE FUNCTION app.disable_provider_account(p_token text, p_id uuid)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_who private.principal := private.authorize(p_token, 'providers:write');
  v_at  timestamptz;
BEGIN
  UPDATE app.provider_accounts SET disabled_at = coalesce(disabled_at, now()), updated_at = now()
   WHERE id = p_id AND tenant_id = v_who.tenant_id
  RETURNING disabled_at INTO v_at;
  IF v_at IS NULL THEN
    PERFORM private.raise_problem(404, 'account_not_found', 'No such provider account.');
  END IF;
  PERFORM private.audit(v_who.tenant_id, v_who.api_key_id, 'provider_account.disable', p_id::text, '{}');
  RETURN jsonb_build_object('id', p_id, 'disabled_at', v_at);
END
$$;
COMMENT ON FUNCTION app.disable_provider_account(text, uuid) IS
  'Disables a tenant''s provider account: later steps go through the deployment''s account (providers:write).';
GRANT EXECUTE ON FUNCTION app.disable_provider_account(text, uuid) TO hermes_api;

-- The sealed credentials of accounts: the workers open them to send (and reseal an
-- older account's webhook secret, webhook_sealed false: app.fill_webhook_secrets). Not
-- the API: it needs only webhook secrets. A disabled account still opens: steps claimed
-- before it was replaced finish through it.
DROP FUNCTION IF EXISTS app.provider_account_credentials(uuid[]);
CREATE FUNCTION app.provider_account_credentials(p_ids uuid[])
RETURNS TABLE (id uuid, provider text, key_id text, credentials bytea, updated_at timestamptz,
               webhook_sealed boolean)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT a.id, a.provider, a.key_id, a.credentials, a.updated_at, a.webhook_secret IS NOT NULL
    FROM app.provider_accounts a WHERE a.id = ANY (p_ids)
$$;
COMMENT ON FUNCTION app.provider_account_credentials(uuid[]) IS
  'Sealed credentials of provider accounts (the workers send with them; never the API).';
REVOKE ALL ON FUNCTION app.provider_account_credentials(uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.provider_account_credentials(uuid[]) TO hermes_worker;

-- The sealed webhook-verification secrets of accounts: the API opens them to check the
-- signature of a callback or an inbound message of a tenant's own account. NULL
-- webhook_secret: an account stored before these were sealed apart and not resealed yet
-- (hermes/migrate.py, or the first worker to open it).
CREATE OR REPLACE FUNCTION app.provider_account_webhook_secrets(p_ids uuid[])
RETURNS TABLE (id uuid, provider text, key_id text, webhook_secret bytea, updated_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT a.id, a.provider, a.webhook_key_id, a.webhook_secret, a.updated_at
    FROM app.provider_accounts a WHERE a.id = ANY (p_ids)
$$;
COMMENT ON FUNCTION app.provider_account_webhook_secrets(uuid[]) IS
  'Sealed webhook-verification secrets of provider accounts (the API checks callback signatures with them).';
REVOKE ALL ON FUNCTION app.provider_account_webhook_secrets(uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.provider_account_webhook_secrets(uuid[]) TO hermes_api;

-- Reseals of accounts stored before webhook secrets were sealed apart (migration 0026):
-- made by whoever holds the key and can open the credentials (a worker, the migrate
-- step). p_secrets = [{"id", "key_id", "webhook_secret" (base64)}]; only an account
-- without one is filled (a sealed secret is never replaced). Returns how many were.
CREATE OR REPLACE FUNCTION app.fill_webhook_secrets(p_secrets jsonb)
RETURNS int
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  WITH filled AS (
    UPDATE app.provider_accounts a
       SET webhook_secret = decode(s ->> 'webhook_secret', 'base64'), webhook_key_id = s ->> 'key_id'
      FROM jsonb_array_elements(coalesce(p_secrets, '[]')) s
     WHERE a.id = (s ->> 'id')::uuid AND a.webhook_secret IS NULL
    RETURNING a.id)
  SELECT count(*)::int FROM filled
$$;
COMMENT ON FUNCTION app.fill_webhook_secrets(jsonb) IS
  'Fills the sealed webhook secret of accounts that have none yet (workers, the migrate step).';
REVOKE ALL ON FUNCTION app.fill_webhook_secrets(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.fill_webhook_secrets(jsonb) TO hermes_worker;

-- The tenant account an inbound message belongs to: the active account for the
-- provider of the tenant that owns the number written to, found as the inbound
-- functions find that tenant today -- Twilio: the tenant of the inbound URL;
-- WhatsApp: the one tenant whose business number it is (default_whatsapp_from). NULL:
-- the deployment's own account. The one place this is decided: when senders are
-- registered (a number -> its provider account), this reads the registry instead.
CREATE OR REPLACE FUNCTION app.inbound_provider_account(p_provider text, p_tenant_id uuid, p_to text)
RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  -- The number's tenant by the sender registry (private.inbound_tenant: the tenant in
  -- the URL must own it); its account: the registry row's, else the tenant's active one
  -- for the provider. Sandbox tenants have none (simulators only).
  WITH who AS (
    SELECT (private.inbound_tenant(CASE WHEN p_provider = 'whatsapp' THEN 'whatsapp' ELSE 'sms' END,
                                   p_to, p_tenant_id)).tenant_id AS tenant_id
  )
  SELECT coalesce(
           (SELECT s.provider_account_id FROM app.senders s JOIN app.provider_accounts pa ON pa.id = s.provider_account_id
             WHERE s.tenant_id = w.tenant_id AND s.kind = 'address' AND s.status <> 'released'
               AND s.channel = CASE WHEN p_provider = 'whatsapp' THEN 'whatsapp' ELSE 'sms' END
               AND s.address = private.normalize_phone(p_to) AND pa.provider = p_provider
               AND pa.disabled_at IS NULL),
           (SELECT pa.id FROM app.provider_accounts pa
             WHERE pa.tenant_id = w.tenant_id AND pa.provider = p_provider AND pa.disabled_at IS NULL))
    FROM who w
    JOIN app.tenants t ON t.id = w.tenant_id AND t.environment <> 'sandbox'
$$;
COMMENT ON FUNCTION app.inbound_provider_account(text, uuid, text) IS
  'The tenant provider account an inbound message to p_to belongs to (its webhook secret verifies it), or NULL.';
REVOKE ALL ON FUNCTION app.inbound_provider_account(text, uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.inbound_provider_account(text, uuid, text) TO hermes_api;

-- The account of an attempt (the API: which account's secret signs its callbacks).
CREATE OR REPLACE FUNCTION app.attempt_provider_account(p_attempt_id uuid)
RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT a.provider_account_id FROM app.message_attempts a
   WHERE a.id = p_attempt_id AND a.message_created_at = private.uuid7_time(p_attempt_id)
$$;
COMMENT ON FUNCTION app.attempt_provider_account(uuid) IS 'The tenant provider account an attempt went through, or NULL.';
GRANT EXECUTE ON FUNCTION app.attempt_provider_account(uuid) TO hermes_api;
