-- Creates a tenant and its first API key (messages:write, keys:write, read, compliance:write,
-- imports:write, providers:write). The
-- implementation: app.create_tenant (a platform key with the admin scope) calls it;
-- the owner calls it directly to bootstrap (p_actor_key_id NULL: no key exists yet).
-- Default senders and the sender registry (app.senders): each default must be a sender
-- the tenant may use. One that is already allowed (a shared simulator number, for a
-- sandbox or test tenant) is used as it is; one that no live registry row holds is
-- registered to the new tenant (creating a tenant is an operator's act, like POST
-- /v1/senders); one that another tenant holds -- or a shared number, for a production
-- tenant -- is refused: HM409 sender_taken, and nothing is created.
DROP FUNCTION IF EXISTS private.create_tenant(uuid, text, text, text);
DROP FUNCTION IF EXISTS app.create_tenant(text, text, text, text);

CREATE OR REPLACE FUNCTION private.create_tenant(
  p_actor_key_id uuid, p_name text, p_environment text DEFAULT 'sandbox',
  p_default_sms_from text DEFAULT NULL, p_default_email_from text DEFAULT NULL,
  p_default_whatsapp_from text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_tenant app.tenants;
  v_from   text;
  v_key    jsonb;
  v_default record;
BEGIN
  IF p_name IS NULL OR length(btrim(p_name)) NOT BETWEEN 1 AND 200 THEN
    PERFORM private.raise_problem(422, 'invalid_name', 'A tenant needs a name of 1 to 200 characters.');
  END IF;
  IF p_environment IS NULL OR p_environment NOT IN ('prod', 'sandbox', 'test') THEN
    PERFORM private.raise_problem(422, 'invalid_environment',
      format('Unknown environment %s.', coalesce(p_environment, 'null')), 'Use prod, sandbox or test.');
  END IF;
  IF p_default_sms_from IS NOT NULL THEN
    v_from := private.normalize_phone(p_default_sms_from);
    IF v_from IS NULL THEN
      PERFORM private.raise_problem(422, 'invalid_from',
        'default_sms_from is not a phone number.', 'Use E.164, e.g. +15005550006.');
    END IF;
  END IF;

  IF p_default_email_from IS NOT NULL
     AND (private.validate_step(jsonb_build_object('channel', 'email', 'to', 'x@example.com', 'subject', 's',
                                                   'body', 'b', 'from', p_default_email_from), NULL, '{}', false)).problem_code
         IS NOT NULL THEN
    PERFORM private.raise_problem(422, 'invalid_from', 'default_email_from is not an email address.',
                                  'E.g. Acme <hello@acme.example>.');
  END IF;
  IF p_default_whatsapp_from IS NOT NULL AND private.normalize_phone(p_default_whatsapp_from) IS NULL THEN
    PERFORM private.raise_problem(422, 'invalid_from', 'default_whatsapp_from is not a phone number.',
                                  'Use E.164, e.g. +15005550006.');
  END IF;

  INSERT INTO app.tenants (name, environment, default_sms_from, default_email_from, default_whatsapp_from)
  VALUES (btrim(p_name), p_environment::app.environment, v_from, btrim(p_default_email_from),
          private.normalize_phone(p_default_whatsapp_from))
  RETURNING * INTO v_tenant;
  -- Its default senders: allowed already, or registered to it when free (see above).
  FOR v_default IN
    SELECT d.channel, d.sender, a.allowed
      FROM (VALUES (1, 'sms', v_tenant.default_sms_from), (2, 'email', v_tenant.default_email_from),
                   (3, 'whatsapp', v_tenant.default_whatsapp_from)) d(n, channel, sender)
      JOIN private.senders_allowed(ARRAY[
             ROW(1, v_tenant.id, 'sms', NULL, v_tenant.default_sms_from, NULL, NULL, NULL)::private.send_candidate,
             ROW(2, v_tenant.id, 'email', NULL, v_tenant.default_email_from, NULL, NULL, NULL)::private.send_candidate,
             ROW(3, v_tenant.id, 'whatsapp', NULL, v_tenant.default_whatsapp_from, NULL, NULL, NULL)::private.send_candidate]) a
        ON a.idx = d.n
     WHERE d.sender IS NOT NULL
     ORDER BY d.n
  LOOP
    CONTINUE WHEN v_default.allowed;
    BEGIN
      PERFORM private.register_sender(p_actor_key_id, jsonb_build_object(
        'channel', v_default.channel, 'address', v_default.sender, 'tenant_id', v_tenant.id));
    EXCEPTION WHEN SQLSTATE 'HM409' THEN
      PERFORM private.raise_problem(409, 'sender_taken',
        format('default_%s_from %s is not free: another tenant has it, or it is a shared simulator number '
               '(which a production tenant may not use), or it is suspended.', v_default.channel, v_default.sender),
        'Choose a number or address of the tenant''s own; an operator can reassign a sender (PATCH /v1/senders/{id}).');
    END;
  END LOOP;
  v_key := private.mint_api_key(v_tenant.id, 'default', ARRAY['messages:write', 'keys:write', 'read', 'compliance:write', 'imports:write', 'providers:write']);

  PERFORM private.audit(NULL, p_actor_key_id, 'tenant.create', v_tenant.id::text,
                        jsonb_build_object('name', v_tenant.name, 'environment', v_tenant.environment));
  PERFORM private.audit(v_tenant.id, p_actor_key_id, 'api_key.create', v_key ->> 'id',
                        jsonb_build_object('scopes', v_key -> 'scopes'));
  RETURN jsonb_build_object(
    'tenant', jsonb_build_object('id', v_tenant.id, 'name', v_tenant.name,
                                 'environment', v_tenant.environment, 'status', v_tenant.status,
                                 'default_sms_from', v_tenant.default_sms_from,
                                 'default_email_from', v_tenant.default_email_from,
                                 'default_whatsapp_from', v_tenant.default_whatsapp_from,
                                 'created_at', v_tenant.created_at),
    'api_key', v_key);
END
$$;
COMMENT ON FUNCTION private.create_tenant(uuid, text, text, text, text, text) IS
  'Creates a tenant and its first API key, acting as p_actor_key_id (NULL: the operator bootstrapping).';

-- POST /v1/tenants: a platform key with the admin scope creates a tenant.
CREATE OR REPLACE FUNCTION app.create_tenant(
  p_token text, p_name text, p_environment text DEFAULT 'sandbox', p_default_sms_from text DEFAULT NULL,
  p_default_email_from text DEFAULT NULL, p_default_whatsapp_from text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN private.create_tenant((private.authorize(p_token, 'admin', false)).api_key_id,
                               p_name, p_environment, p_default_sms_from, p_default_email_from,
                               p_default_whatsapp_from);
END
$$;
COMMENT ON FUNCTION app.create_tenant(text, text, text, text, text, text) IS
  'Creates a tenant and its first API key (admin scope); returns both (the token is shown once).';
GRANT EXECUTE ON FUNCTION app.create_tenant(text, text, text, text, text, text) TO hermes_api;
