-- The sender registry (app.senders, migration 0023): the deployment's phone numbers,
-- WhatsApp business numbers, email addresses and email domains, and whose each is.
-- Operators register and change them (admin scope: POST/PATCH/GET /v1/senders, or the
-- private.* forms as the database owner); tenants read theirs through api.senders.
--
-- The rule, in one place (private.senders_allowed): a step may go from a sender iff an
-- active row matches it -- the exact number or address, or for email also a domain row
-- for the address's domain (case-insensitive) -- and that row is the step's tenant's,
-- or is shared (a simulator's number) and the tenant is not a production one. Intake
-- (private.accept_messages: 422 sender_not_allowed) and the claim (app.claim_attempts:
-- the step is rejected with reason sender_not_allowed, the cascade moves on) both ask it.

-- The registry's form of a step's sender: E.164 for sms and whatsapp, the lower-cased
-- address of an email sender ("Acme <Hello@Acme.example>" -> hello@acme.example); NULL
-- when it is none.
CREATE OR REPLACE FUNCTION private.sender_address(p_channel text, p_from text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE
    WHEN p_channel IN ('sms', 'whatsapp') THEN private.normalize_phone(p_from)
    WHEN p_channel = 'email' THEN (
      SELECT CASE WHEN k ~ '@' AND k !~ '^\+' THEN k END
        FROM private.address_key(btrim(coalesce(substring(p_from FROM '<([^<>]*)>\s*$'), p_from))) k)
  END
$$;
COMMENT ON FUNCTION private.sender_address(text, text) IS
  'The registry form of a sender: E.164 (sms, whatsapp) or the lower-cased email address; NULL when it is none.';

-- The rule, set-based: for each (tenant, channel, from) of p_candidates (the type the
-- eligibility check takes; idx, tenant_id, channel and from_address are read), whether
-- that tenant may send from that sender now. A step without a sender (push; WhatsApp
-- with no default: never sent, the provider has no number for it) borrows nothing.
CREATE OR REPLACE FUNCTION private.senders_allowed(p_candidates private.send_candidate[])
RETURNS TABLE (idx int, allowed boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT c.idx,
         c.from_address IS NULL OR c.channel NOT IN ('sms', 'whatsapp', 'email')
         OR EXISTS (
           SELECT 1 FROM app.senders s
            WHERE s.channel = c.channel AND s.status = 'active'
              AND ((s.kind = 'address' AND s.address = a.address)
                   OR (s.kind = 'domain' AND s.address = split_part(a.address, '@', 2)))
              AND (s.tenant_id = c.tenant_id OR (s.shared AND t.environment <> 'prod')))
    FROM unnest(p_candidates) c
    LEFT JOIN app.tenants t ON t.id = c.tenant_id
   CROSS JOIN LATERAL (SELECT private.sender_address(c.channel, c.from_address) AS address) a
$$;
COMMENT ON FUNCTION private.senders_allowed(private.send_candidate[]) IS
  'The sender rule: each candidate''s tenant may send from its sender (an active row of its own, or shared and not prod).';

CREATE OR REPLACE FUNCTION private.sender_json(s app.senders)
RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT jsonb_build_object(
    'id', s.id, 'channel', s.channel, 'kind', s.kind, 'address', s.address, 'tenant_id', s.tenant_id,
    'shared', s.shared, 'provider_account_id', s.provider_account_id, 'number_type', s.number_type,
    'time_zone', s.time_zone, 'status', s.status, 'created_at', s.created_at, 'updated_at', s.updated_at,
    'released_at', s.released_at)
$$;
COMMENT ON FUNCTION private.sender_json(app.senders) IS 'A sender as the admin API answers it.';

-- Checks a sender's final state (a new row, or a row with its changes applied) and
-- that no other live row holds it: the same sender, or for email the domain of an
-- address / an address at a domain, with another owner. Raises the problem.
CREATE OR REPLACE FUNCTION private.check_sender(s app.senders)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_other app.senders;
BEGIN
  IF s.number_type IS NOT NULL AND s.number_type NOT IN ('long_code', 'toll_free', 'short_code', 'alphanumeric') THEN
    PERFORM private.raise_problem(422, 'invalid_number_type', format('Unknown number type %s.', left(s.number_type, 40)),
      'long_code, toll_free or short_code (phones only).');
  ELSIF s.channel = 'email' AND s.number_type IS NOT NULL THEN
    PERFORM private.raise_problem(422, 'invalid_number_type', 'An email sender has no number type.');
  ELSIF s.number_type = 'alphanumeric' THEN
    -- Hermes sends SMS from E.164 numbers only: an alphanumeric sender ID could never match.
    PERFORM private.raise_problem(422, 'invalid_number_type',
      'Alphanumeric sender IDs are not supported: steps are sent from E.164 numbers.');
  END IF;
  IF s.time_zone IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_timezone_names z WHERE z.name = s.time_zone) THEN
    PERFORM private.raise_problem(422, 'invalid_time_zone', format('Unknown time zone %s.', left(s.time_zone, 64)),
      'An IANA time zone name, e.g. America/New_York.');
  END IF;
  IF s.tenant_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM app.tenants t WHERE t.id = s.tenant_id) THEN
    PERFORM private.raise_problem(422, 'unknown_tenant', 'No such tenant.');
  END IF;
  IF s.shared AND s.tenant_id IS NOT NULL THEN
    PERFORM private.raise_problem(422, 'conflicting_fields', 'A shared sender belongs to no tenant.',
      'Either "shared": true (a simulator''s number for sandbox and test tenants) or a "tenant_id".');
  END IF;
  IF s.provider_account_id IS NOT NULL AND NOT EXISTS (
       SELECT 1 FROM app.provider_accounts a
        WHERE a.id = s.provider_account_id AND a.tenant_id = s.tenant_id AND a.disabled_at IS NULL) THEN
    PERFORM private.raise_problem(422, 'invalid_provider_account',
      'The provider account is not an active account of the sender''s tenant.',
      'Pass one of the owner''s accounts, or null: the deployment''s.');
  END IF;
  IF s.status = 'released' THEN
    RETURN;  -- a released row holds nothing
  END IF;
  SELECT * INTO v_other FROM app.senders o
   WHERE o.id <> s.id AND o.channel = s.channel AND o.status <> 'released'
     AND ((o.kind = s.kind AND o.address = s.address)
          OR (o.tenant_id IS DISTINCT FROM s.tenant_id OR o.shared <> s.shared)
             AND ((s.kind = 'address' AND o.kind = 'domain' AND o.address = split_part(s.address, '@', 2))
                  OR (s.kind = 'domain' AND o.kind = 'address' AND split_part(o.address, '@', 2) = s.address)))
   LIMIT 1;
  IF v_other.id IS NOT NULL THEN
    PERFORM private.raise_problem(409, 'sender_taken',
      format('%s %s is held by sender %s (%s).', s.channel, s.address, v_other.id,
             CASE WHEN v_other.shared THEN 'shared' WHEN v_other.tenant_id IS NULL THEN 'no tenant'
                  ELSE 'tenant ' || v_other.tenant_id END),
      'A sender has one owner: reassign that one (PATCH /v1/senders/{id}) or release it first.');
  END IF;
END
$$;
COMMENT ON FUNCTION private.check_sender(app.senders) IS
  'Validates a sender''s final state and that no other live row holds it (HM409 sender_taken).';

-- Registers a sender. p_sender = {channel, address, kind? (address), tenant_id?,
-- shared? (false), provider_account_id?, number_type? (phones: long_code, or toll_free
-- for NANP toll-free numbers), time_zone?}. p_actor_key_id: the acting admin key (NULL:
-- the operator as the database owner). Returns the sender.
CREATE OR REPLACE FUNCTION private.register_sender(p_actor_key_id uuid, p_sender jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_unknown text;
  v_row     app.senders;
  v_raw     text;
BEGIN
  IF jsonb_typeof(p_sender) IS DISTINCT FROM 'object' THEN
    PERFORM private.raise_problem(422, 'invalid_request', 'A sender is a JSON object.');
  END IF;
  SELECT string_agg(k, ', ' ORDER BY k) INTO v_unknown FROM jsonb_object_keys(p_sender) k
   WHERE k NOT IN ('channel', 'kind', 'address', 'tenant_id', 'shared', 'provider_account_id', 'number_type', 'time_zone');
  IF v_unknown IS NOT NULL THEN
    PERFORM private.raise_problem(422, 'unknown_field', format('Unknown field(s): %s.', v_unknown),
      'A sender takes "channel", "address", "kind", "tenant_id", "shared", "provider_account_id", "number_type", "time_zone".');
  END IF;
  IF EXISTS (SELECT 1 FROM jsonb_each(p_sender) e
              WHERE (e.key IN ('channel', 'kind', 'address', 'number_type', 'time_zone') AND jsonb_typeof(e.value) NOT IN ('string', 'null'))
                 OR (e.key = 'shared' AND jsonb_typeof(e.value) NOT IN ('boolean', 'null'))
                 OR (e.key IN ('tenant_id', 'provider_account_id')
                     AND NOT (jsonb_typeof(e.value) = 'null'
                              OR (jsonb_typeof(e.value) = 'string' AND e.value #>> '{}' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')))) THEN
    PERFORM private.raise_problem(422, 'invalid_field',
      'channel, kind, address, number_type and time_zone are strings; shared a boolean; tenant_id and provider_account_id UUIDs.');
  END IF;

  v_row.id := gen_random_uuid();
  v_row.channel := p_sender ->> 'channel';
  IF v_row.channel IS NULL OR v_row.channel NOT IN ('sms', 'whatsapp', 'email') THEN
    PERFORM private.raise_problem(422, 'invalid_channel', format('Channel %s has no senders.', coalesce(left(v_row.channel, 40), 'null')),
      'sms, whatsapp or email.');
  END IF;
  v_row.kind := coalesce(p_sender ->> 'kind', 'address');
  IF v_row.kind NOT IN ('address', 'domain') OR (v_row.kind = 'domain' AND v_row.channel <> 'email') THEN
    PERFORM private.raise_problem(422, 'invalid_kind', format('Kind %s is not one for %s.', left(v_row.kind, 40), v_row.channel),
      '"address" (the default), or "domain" for an email domain.');
  END IF;
  v_raw := p_sender ->> 'address';
  v_row.address := CASE WHEN v_row.kind = 'domain'
                        THEN (SELECT CASE WHEN d ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$'
                                               AND length(d) <= 253 THEN d END
                                FROM lower(regexp_replace(btrim(v_raw), '^@', '')) d)
                        ELSE private.sender_address(v_row.channel, v_raw) END;
  IF v_row.address IS NULL THEN
    PERFORM private.raise_problem(422, 'invalid_address',
      format('%s is not %s.', coalesce(left(v_raw, 80), 'null'),
             CASE WHEN v_row.channel <> 'email' THEN 'a phone number' WHEN v_row.kind = 'domain' THEN 'a domain'
                  ELSE 'an email address' END),
      CASE WHEN v_row.channel <> 'email' THEN 'E.164, e.g. +14155550100.'
           WHEN v_row.kind = 'domain' THEN 'A domain name, e.g. acme.example.' ELSE 'E.g. hello@acme.example.' END);
  END IF;
  v_row.tenant_id := (p_sender ->> 'tenant_id')::uuid;
  v_row.shared := coalesce((p_sender ->> 'shared')::boolean, false);
  v_row.provider_account_id := (p_sender ->> 'provider_account_id')::uuid;
  v_row.number_type := coalesce(p_sender ->> 'number_type',
                                CASE WHEN v_row.channel = 'email' THEN NULL
                                     WHEN v_row.address ~ '^\+1(800|833|844|855|866|877|888)' THEN 'toll_free'
                                     ELSE 'long_code' END);
  v_row.time_zone := p_sender ->> 'time_zone';
  v_row.status := 'active';
  PERFORM private.check_sender(v_row);

  BEGIN
    INSERT INTO app.senders (id, channel, kind, address, tenant_id, shared, provider_account_id, number_type, time_zone)
    VALUES (v_row.id, v_row.channel, v_row.kind, v_row.address, v_row.tenant_id, v_row.shared,
            v_row.provider_account_id, v_row.number_type, v_row.time_zone)
    RETURNING * INTO v_row;
  EXCEPTION WHEN unique_violation THEN
    -- registered by a concurrent transaction since the check
    PERFORM private.raise_problem(409, 'sender_taken', format('%s %s is already registered.', v_row.channel, v_row.address),
      'A sender has one owner: reassign it (PATCH /v1/senders/{id}) or release it first.');
  END;
  PERFORM private.audit(v_row.tenant_id, p_actor_key_id, 'sender.register', v_row.id::text, private.sender_json(v_row));
  RETURN private.sender_json(v_row);
END
$$;
COMMENT ON FUNCTION private.register_sender(uuid, jsonb) IS
  'Registers a sender (phone number, WhatsApp number, email address or domain), owned by a tenant or shared.';

-- Changes a sender, atomically: p_changes = {tenant_id? (reassign: the sender moves to
-- that tenant, or to none with null; a shared sender given an owner stops being shared),
-- shared?, status? (active | suspended | released: final), provider_account_id? (null:
-- the deployment's), number_type?, time_zone?}. A reassigned sender keeps its provider
-- account only if the new owner owns it (else pass provider_account_id). Steps already
-- accepted from it are checked again at their claim: the old owner's are rejected.
CREATE OR REPLACE FUNCTION private.update_sender(p_actor_key_id uuid, p_id uuid, p_changes jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_old     app.senders;
  v_new     app.senders;
  v_unknown text;
BEGIN
  IF jsonb_typeof(p_changes) IS DISTINCT FROM 'object' THEN
    PERFORM private.raise_problem(422, 'invalid_request', 'The changes are a JSON object.');
  END IF;
  SELECT string_agg(k, ', ' ORDER BY k) INTO v_unknown FROM jsonb_object_keys(p_changes) k
   WHERE k NOT IN ('tenant_id', 'shared', 'status', 'provider_account_id', 'number_type', 'time_zone');
  IF v_unknown IS NOT NULL THEN
    PERFORM private.raise_problem(422, 'unknown_field', format('Unknown field(s): %s.', v_unknown),
      'A sender''s "tenant_id", "shared", "status", "provider_account_id", "number_type" and "time_zone" change; '
      'its channel and address never do (register another).');
  END IF;
  IF EXISTS (SELECT 1 FROM jsonb_each(p_changes) e
              WHERE (e.key IN ('number_type', 'time_zone') AND jsonb_typeof(e.value) NOT IN ('string', 'null'))
                 OR (e.key = 'status' AND jsonb_typeof(e.value) <> 'string')
                 OR (e.key = 'shared' AND jsonb_typeof(e.value) <> 'boolean')
                 OR (e.key IN ('tenant_id', 'provider_account_id')
                     AND NOT (jsonb_typeof(e.value) = 'null'
                              OR (jsonb_typeof(e.value) = 'string' AND e.value #>> '{}' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')))) THEN
    PERFORM private.raise_problem(422, 'invalid_field',
      'status, number_type and time_zone are strings; shared a boolean; tenant_id and provider_account_id UUIDs.');
  END IF;
  IF p_changes ? 'status' AND p_changes ->> 'status' NOT IN ('active', 'suspended', 'released') THEN
    PERFORM private.raise_problem(422, 'invalid_status', format('Unknown status %s.', left(p_changes ->> 'status', 40)),
      'active, suspended or released.');
  END IF;

  SELECT * INTO v_old FROM app.senders WHERE id = p_id FOR UPDATE;
  IF v_old.id IS NULL THEN
    PERFORM private.raise_problem(404, 'sender_not_found', 'No such sender.');
  ELSIF v_old.status = 'released' THEN
    PERFORM private.raise_problem(409, 'sender_released', 'This sender was released; it changes no more.',
      'Register the number or address again (POST /v1/senders).');
  END IF;

  v_new := v_old;
  IF p_changes ? 'tenant_id' THEN
    v_new.tenant_id := (p_changes ->> 'tenant_id')::uuid;
    IF v_new.tenant_id IS NOT NULL AND NOT p_changes ? 'shared' THEN
      v_new.shared := false;
    END IF;
    IF v_new.tenant_id IS DISTINCT FROM v_old.tenant_id AND NOT p_changes ? 'provider_account_id'
       AND v_old.provider_account_id IS NOT NULL THEN
      PERFORM private.raise_problem(422, 'provider_account_mismatch',
        'The sender lives in its owner''s provider account; a new owner needs its own.',
        'Pass "provider_account_id": one of the new owner''s accounts, or null (the deployment''s).');
    END IF;
  END IF;
  IF p_changes ? 'shared' THEN v_new.shared := (p_changes ->> 'shared')::boolean; END IF;
  IF p_changes ? 'provider_account_id' THEN v_new.provider_account_id := (p_changes ->> 'provider_account_id')::uuid; END IF;
  IF p_changes ? 'number_type' THEN v_new.number_type := p_changes ->> 'number_type'; END IF;
  IF p_changes ? 'time_zone' THEN v_new.time_zone := p_changes ->> 'time_zone'; END IF;
  IF v_new.channel <> 'email' AND v_new.number_type IS NULL THEN
    PERFORM private.raise_problem(422, 'invalid_number_type', 'A phone sender has a number type.',
      'long_code, toll_free or short_code.');
  END IF;
  IF p_changes ? 'status' THEN
    v_new.status := p_changes ->> 'status';
    v_new.released_at := CASE WHEN v_new.status = 'released' THEN now() END;
  END IF;
  PERFORM private.check_sender(v_new);

  UPDATE app.senders
     SET tenant_id = v_new.tenant_id, shared = v_new.shared, provider_account_id = v_new.provider_account_id,
         number_type = v_new.number_type, time_zone = v_new.time_zone, status = v_new.status,
         released_at = v_new.released_at, updated_at = now()
   WHERE id = p_id
  RETURNING * INTO v_new;
  PERFORM private.audit(coalesce(v_new.tenant_id, v_old.tenant_id), p_actor_key_id,
    CASE WHEN v_new.tenant_id IS DISTINCT FROM v_old.tenant_id OR v_new.shared <> v_old.shared THEN 'sender.reassign'
         ELSE 'sender.update' END,
    p_id::text,
    jsonb_build_object('changes', p_changes, 'from_tenant_id', v_old.tenant_id, 'to_tenant_id', v_new.tenant_id,
                       'from_status', v_old.status, 'to_status', v_new.status));
  IF v_new.tenant_id IS DISTINCT FROM v_old.tenant_id AND v_old.tenant_id IS NOT NULL THEN
    -- the previous owner's log says where its sender went
    PERFORM private.audit(v_old.tenant_id, p_actor_key_id, 'sender.reassign', p_id::text,
                          jsonb_build_object('from_tenant_id', v_old.tenant_id, 'to_tenant_id', v_new.tenant_id));
  END IF;
  RETURN private.sender_json(v_new);
END
$$;
COMMENT ON FUNCTION private.update_sender(uuid, uuid, jsonb) IS
  'Changes a sender atomically: reassigns it, suspends, re-activates or releases it, sets its account, type, zone.';

-- The admin routes: a platform key with the admin scope.
CREATE OR REPLACE FUNCTION app.register_sender(p_token text, p_sender jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN private.register_sender((private.authorize(p_token, 'admin', false)).api_key_id, p_sender);
END
$$;
COMMENT ON FUNCTION app.register_sender(text, jsonb) IS 'POST /v1/senders: registers a sender (admin scope).';
REVOKE ALL ON FUNCTION app.register_sender(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.register_sender(text, jsonb) TO hermes_api;

CREATE OR REPLACE FUNCTION app.update_sender(p_token text, p_id uuid, p_changes jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN private.update_sender((private.authorize(p_token, 'admin', false)).api_key_id, p_id, p_changes);
END
$$;
COMMENT ON FUNCTION app.update_sender(text, uuid, jsonb) IS
  'PATCH /v1/senders/{id}: reassigns, suspends, releases or re-types a sender (admin scope).';
REVOKE ALL ON FUNCTION app.update_sender(text, uuid, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.update_sender(text, uuid, jsonb) TO hermes_api;

-- GET /v1/senders: p_filter = {tenant_id?, channel?, status?, address?, shared?}, newest
-- first, at most 1,000.
CREATE OR REPLACE FUNCTION app.list_senders(p_token text, p_filter jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_who private.principal := private.authorize(p_token, 'admin', false);
  v_f   jsonb := coalesce(p_filter, '{}');
BEGIN
  IF jsonb_typeof(v_f) <> 'object' OR EXISTS (
       SELECT 1 FROM jsonb_each(v_f) e
        WHERE e.key NOT IN ('tenant_id', 'channel', 'status', 'address', 'shared')
           OR (e.key <> 'shared' AND jsonb_typeof(e.value) <> 'string')
           OR (e.key = 'shared' AND jsonb_typeof(e.value) <> 'boolean')
           OR (e.key = 'tenant_id' AND e.value #>> '{}' !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')) THEN
    PERFORM private.raise_problem(422, 'invalid_filter',
      'Filter by tenant_id (a UUID), channel, status, address (strings) or shared (a boolean).');
  END IF;
  RETURN (SELECT coalesce(jsonb_agg(private.sender_json(s) ORDER BY s.created_at DESC, s.id), '[]')
            FROM (SELECT * FROM app.senders s
                   WHERE (NOT v_f ? 'tenant_id' OR s.tenant_id = (v_f ->> 'tenant_id')::uuid)
                     AND (NOT v_f ? 'channel' OR s.channel = v_f ->> 'channel')
                     AND (NOT v_f ? 'status' OR s.status = v_f ->> 'status')
                     AND (NOT v_f ? 'shared' OR s.shared = (v_f ->> 'shared')::boolean)
                     AND (NOT v_f ? 'address' OR s.address = coalesce(private.sender_address(s.channel, v_f ->> 'address'),
                                                                     lower(btrim(v_f ->> 'address'))))
                   ORDER BY s.created_at DESC, s.id LIMIT 1000) s);
END
$$;
COMMENT ON FUNCTION app.list_senders(text, jsonb) IS 'GET /v1/senders: the registry, filtered (admin scope).';
REVOKE ALL ON FUNCTION app.list_senders(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.list_senders(text, jsonb) TO hermes_api;

-- Which tenant an inbound message to p_to (a number of ours on p_channel) is for: the
-- owner of the live (active or suspended: a STOP to a suspended number still counts)
-- registry row. p_tenant_id: the tenant named by a per-tenant inbound URL (the older
-- form, kept as an alias): the number must be that tenant's, or a shared one it may use.
-- A shared number named by no URL belongs to the one sandbox or test tenant whose
-- default sender it is, if exactly one has it (the `make run` demo); otherwise nobody.
-- Returns the tenant, or the problem (HTTP status, code, detail, hint); raises nothing.
CREATE OR REPLACE FUNCTION private.inbound_tenant(
  p_channel text, p_to text, p_tenant_id uuid,
  OUT tenant_id uuid, OUT problem_status int, OUT problem_code text, OUT problem_detail text, OUT problem_hint text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_to     text := private.normalize_phone(p_to);
  v_row    app.senders;
  v_env    app.environment;
  v_owners uuid[];
BEGIN
  SELECT * INTO v_row FROM app.senders s
   WHERE s.channel = p_channel AND s.kind = 'address' AND s.address = v_to AND s.status <> 'released';
  IF p_tenant_id IS NOT NULL THEN
    SELECT t.environment INTO v_env FROM app.tenants t WHERE t.id = p_tenant_id;
    IF v_row.id IS NOT NULL AND (v_row.tenant_id = p_tenant_id OR (v_row.shared AND v_env <> 'prod')) THEN
      tenant_id := p_tenant_id;
      RETURN;
    END IF;
  ELSIF v_row.tenant_id IS NOT NULL THEN
    tenant_id := v_row.tenant_id;
    RETURN;
  ELSIF v_row.shared THEN
    SELECT array_agg(t.id) INTO v_owners FROM app.tenants t
     WHERE t.environment <> 'prod' AND t.status = 'active'
       AND v_to = CASE p_channel WHEN 'sms' THEN t.default_sms_from ELSE t.default_whatsapp_from END;
    IF cardinality(v_owners) = 1 THEN
      tenant_id := v_owners[1];
      RETURN;
    END IF;
    problem_status := 404; problem_code := 'shared_number';
    problem_detail := format('%s is a shared simulator number: no one tenant receives its messages.', v_to);
    problem_hint := 'Point it at /v1/webhooks/twilio/inbound/{tenant_id}.';
    RETURN;
  END IF;
  IF v_row.id IS NULL THEN
    problem_status := 404; problem_code := 'unknown_number';
    problem_detail := format('%s is not a registered %s sender.', coalesce(v_to, left(p_to, 40)), p_channel);
    problem_hint := 'An operator registers numbers: POST /v1/senders.';
  ELSE
    problem_status := 403; problem_code := 'number_not_yours';
    problem_detail := 'The number written to is not this tenant''s.';
    problem_hint := 'Point the number at /v1/webhooks/twilio/inbound (the registry finds its tenant).';
  END IF;
END
$$;
COMMENT ON FUNCTION private.inbound_tenant(text, text, uuid) IS
  'The tenant an inbound message belongs to, by the registry row of the number written to (or the problem).';
