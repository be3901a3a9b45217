-- A tenant's own provider accounts (providers:write, a scope of its own: an account
-- receives the content of every later message, so a key that manages API keys must
-- not be able to point sends at an account it controls). The
-- command API seals the credentials (hermes/credentials.py) under an id it chose, so
-- the ciphertext is bound to it; SQL stores ciphertext only and never answers it to
-- the API. Setting an account for a provider replaces (disables) the tenant's previous
-- one for it; steps accepted from then on go through the new one.
CREATE OR REPLACE FUNCTION app.set_provider_account(
  p_token text, p_id uuid, p_provider text, p_name text, p_credentials bytea, p_key_id text)
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
     OR p_key_id IS NULL OR p_key_id !~ '^[A-Za-z0-9_-]{1,32}$' THEN
    PERFORM private.raise_problem(422, 'invalid_credentials', 'The sealed credentials are malformed.');
  END IF;
  UPDATE app.provider_accounts SET disabled_at = now(), updated_at = now()
   WHERE tenant_id = v_who.tenant_id AND provider = p_provider AND disabled_at IS NULL
  RETURNING id INTO v_old;
  INSERT INTO app.provider_accounts (id, tenant_id, provider, name, credentials, key_id)
  VALUES (p_id, v_who.tenant_id, p_provider, p_name, p_credentials, p_key_id)
  RETURNING * INTO v_account;
  PERFORM private.audit(v_who.tenant_id, v_who.api_key_id, 'provider_account.set', p_id::text,
                        jsonb_build_object('provider', p_provider, 'name', p_name, 'replaces', v_old));
  RETURN jsonb_build_object('id', v_account.id, 'provider', v_account.provider, 'name', v_account.name,
                            'created_at', v_account.created_at, 'replaces', v_old);
END
$$;
COMMENT ON FUNCTION app.set_provider_account(text, uuid, text, text, bytea, text) IS
  'Stores a tenant''s provider account (sealed credentials), replacing its active one for that provider (providers:write).';
GRANT EXECUTE ON FUNCTION app.set_provider_account(text, uuid, text, text, bytea, text) TO hermes_api;

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

-- The sealed credentials of accounts, for whoever holds the key: the workers (to send)
-- and the API (to check a tenant account's callback signatures). A disabled account
-- still opens: steps claimed before it was replaced finish through it.
CREATE OR REPLACE FUNCTION app.provider_account_credentials(p_ids uuid[])
RETURNS TABLE (id uuid, provider text, key_id text, credentials bytea, updated_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT a.id, a.provider, a.key_id, a.credentials, a.updated_at
    FROM app.provider_accounts a WHERE a.id = ANY (p_ids)
$$;
COMMENT ON FUNCTION app.provider_account_credentials(uuid[]) IS
  'Sealed credentials of provider accounts (workers send with them; the API checks callback signatures).';
GRANT EXECUTE ON FUNCTION app.provider_account_credentials(uuid[]) TO hermes_worker, hermes_api;

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
