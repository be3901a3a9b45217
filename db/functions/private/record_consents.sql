-- What makes a consent event valid, in one place for every way one is recorded (the
-- API, inbound keywords, provider errors, imports). p_event:
--   {"address": E.164 | email, "kind": "opt_in" | "opt_out",
--    "channel"?: sms | email | push | whatsapp | all (default all),
--    "scope"?: tenant (default) | vertical | sender | global (operators only),
--    "vertical"? (scope vertical), "sender"? (scope sender: the sending number or address),
--    "source"?: api (default) | keyword | import | provider_error | complaint | bounce | operator,
--    "evidence"?: {...}, "occurred_at"?: ISO 8601 (default now; at most 5 minutes ahead)}
-- p_operator: whether the caller may record global scope and source operator.
-- Returns the normalized event or a problem; raises nothing (a batch reports each item).
CREATE OR REPLACE FUNCTION private.validate_consent(
  p_event jsonb, p_operator boolean,
  OUT address text, OUT channel text, OUT kind text, OUT scope text, OUT scope_ref text,
  OUT source text, OUT evidence jsonb, OUT occurred_at timestamptz,
  OUT problem_status int, OUT problem_code text, OUT problem_detail text, OUT problem_hint text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_unknown text;
BEGIN
  problem_status := 422;
  IF p_event IS NULL OR jsonb_typeof(p_event) <> 'object' THEN
    problem_code := 'invalid_request'; problem_detail := 'A consent event must be a JSON object.';
    RETURN;
  END IF;
  SELECT string_agg(k, ', ' ORDER BY k) INTO v_unknown
    FROM jsonb_object_keys(p_event) k
   WHERE k NOT IN ('address', 'kind', 'channel', 'scope', 'vertical', 'sender', 'source', 'evidence', 'occurred_at');
  IF v_unknown IS NOT NULL THEN
    problem_code := 'unknown_field'; problem_detail := format('Unknown field(s): %s.', v_unknown);
    problem_hint := 'A consent event takes address, kind, channel, scope, vertical, sender, source, evidence, occurred_at.';
    RETURN;
  END IF;
  address := private.address_key(p_event ->> 'address');
  IF jsonb_typeof(p_event -> 'address') IS DISTINCT FROM 'string' OR address IS NULL THEN
    address := NULL;
    problem_code := 'invalid_address';
    problem_detail := format('"address" must be an E.164 phone number or an email address, not %s.',
                             coalesce(left(p_event ->> 'address', 40), 'null'));
    problem_hint := 'e.g. +14155550100 or someone@example.com.';
    RETURN;
  END IF;
  kind := p_event ->> 'kind';
  IF kind IS NULL OR kind NOT IN ('opt_in', 'opt_out') THEN
    address := NULL; kind := NULL;
    problem_code := 'invalid_kind'; problem_detail := '"kind" must be opt_in or opt_out.';
    RETURN;
  END IF;
  channel := coalesce(p_event ->> 'channel', 'all');
  scope := coalesce(p_event ->> 'scope', 'tenant');
  source := coalesce(p_event ->> 'source', CASE WHEN p_operator THEN 'operator' ELSE 'api' END);
  evidence := coalesce(p_event -> 'evidence', '{}');
  scope_ref := CASE scope WHEN 'vertical' THEN p_event ->> 'vertical'
                          WHEN 'sender' THEN private.address_key(p_event ->> 'sender')
                          ELSE '' END;
  problem_code := CASE
    WHEN channel NOT IN ('sms', 'email', 'push', 'whatsapp', 'all') THEN 'invalid_channel'
    WHEN scope NOT IN ('tenant', 'vertical', 'sender', 'global') THEN 'invalid_scope'
    WHEN scope = 'global' AND NOT p_operator THEN 'global_scope_forbidden'
    WHEN scope = 'vertical' AND (scope_ref IS NULL OR scope_ref !~ '^[a-z0-9][a-z0-9_-]{0,63}$') THEN 'invalid_vertical'
    WHEN scope = 'sender' AND scope_ref IS NULL THEN 'invalid_sender'
    WHEN scope NOT IN ('vertical', 'sender') AND (p_event ? 'vertical' OR p_event ? 'sender') THEN 'unexpected_scope_ref'
    WHEN source NOT IN ('api', 'keyword', 'import', 'provider_error', 'complaint', 'bounce', 'operator')
         OR (source = 'operator' AND NOT p_operator) THEN 'invalid_source'
    WHEN jsonb_typeof(evidence) <> 'object' OR length(evidence::text) > 8192 THEN 'invalid_evidence'
  END;
  problem_detail := CASE problem_code
    WHEN 'invalid_channel' THEN '"channel" must be sms, email, push, whatsapp or all.'
    WHEN 'invalid_scope' THEN '"scope" must be tenant, vertical or sender.'
    WHEN 'global_scope_forbidden' THEN 'Only operators record consent at global scope.'
    WHEN 'invalid_vertical' THEN 'Scope vertical needs "vertical": lower-case letters, digits, _ or -, at most 64.'
    WHEN 'invalid_sender' THEN 'Scope sender needs "sender": the E.164 number or email address that sends.'
    WHEN 'unexpected_scope_ref' THEN '"vertical" goes with scope vertical, "sender" with scope sender.'
    WHEN 'invalid_source' THEN '"source" must be api, keyword, import, provider_error, complaint or bounce.'
    WHEN 'invalid_evidence' THEN '"evidence" must be a JSON object of at most 8 KB.'
  END;
  IF problem_code IS NULL THEN
    BEGIN
      occurred_at := coalesce((p_event ->> 'occurred_at')::timestamptz, now());
    EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR invalid_text_representation THEN
      problem_code := 'invalid_occurred_at';
      problem_detail := '"occurred_at" must be an ISO 8601 time with its offset, e.g. 2026-12-02T10:00:00Z.';
    END;
    IF occurred_at > now() + interval '5 minutes' THEN
      problem_code := 'invalid_occurred_at';
      problem_detail := '"occurred_at" is in the future.';
    END IF;
  END IF;
  IF problem_code IS NOT NULL THEN
    address := NULL; kind := NULL; channel := NULL; scope := NULL; scope_ref := NULL;
    source := NULL; evidence := NULL; occurred_at := NULL;
  ELSE
    problem_status := NULL;
  END IF;
END
$$;
COMMENT ON FUNCTION private.validate_consent(jsonb, boolean) IS
  'Validates and normalizes one consent event request; returns it or a problem (never raises).';

-- Records consent events, set-based: the one implementation behind POST /v1/consents,
-- inbound keywords, provider errors and imports. p_tenant_id NULL acts as an operator
-- (global scope allowed). Each address's lock (private.lock_addresses) is taken before
-- the insert, so an opt-out and a claim of a send to the same address are serialized:
-- once this transaction commits, no later claim hands that address to a provider.
-- The events get their ledger ids under those locks: of one address's events, a higher
-- id was recorded later, and that order -- not the caller's occurred_at, which is
-- evidence -- is what ranks them (private.tg_consent_state). An id taken before the
-- lock could be lower than that of an event committed while this one waited (a STOP
-- that committed after an opt-in would then rank before it).
-- Returns one result per item, in order: {index, status: 201, event} | {index, status, problem}.
CREATE OR REPLACE FUNCTION private.record_consents(p_tenant_id uuid, p_api_key_id uuid, p_events jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_items   jsonb;
  v_results jsonb;
BEGIN
  -- 1. Each item validated.
  SELECT coalesce(jsonb_agg(jsonb_build_object(
           'idx', e.n - 1,
           'valid', v.problem_code IS NULL,
           'address', v.address, 'channel', v.channel, 'kind', v.kind,
           'scope', CASE WHEN p_tenant_id IS NULL THEN 'global' ELSE v.scope END,
           'scope_ref', v.scope_ref, 'source', v.source, 'evidence', v.evidence, 'occurred_at', v.occurred_at,
           'problem', CASE WHEN v.problem_code IS NOT NULL THEN jsonb_strip_nulls(jsonb_build_object(
                        'status', v.problem_status, 'code', v.problem_code,
                        'detail', v.problem_detail, 'hint', v.problem_hint)) END) ORDER BY e.n), '[]')
    INTO v_items
    FROM jsonb_array_elements(p_events) WITH ORDINALITY e(item, n)
   CROSS JOIN LATERAL private.validate_consent(e.item, p_tenant_id IS NULL) v;

  -- 2. The addresses' locks (sorted); then the valid items' ledger ids, in item order;
  -- then the events.
  PERFORM private.lock_addresses(ARRAY(SELECT private.address_hash(i ->> 'address')
                                         FROM jsonb_array_elements(v_items) i WHERE (i ->> 'valid')::boolean));
  SELECT jsonb_agg(x.i || jsonb_build_object('id', CASE WHEN (x.i ->> 'valid')::boolean
                                                        THEN nextval('app.consent_events_id_seq') END)
                   ORDER BY x.n)
    INTO v_items
    FROM (SELECT i, n FROM jsonb_array_elements(v_items) WITH ORDINALITY y(i, n) ORDER BY n) x;
  v_items := coalesce(v_items, '[]');
  WITH inserted AS (
    INSERT INTO app.consent_events (id, tenant_id, address, address_hash, channel, kind, scope, scope_ref,
                                    source, evidence, occurred_at, api_key_id)
    SELECT (i ->> 'id')::bigint, p_tenant_id, i ->> 'address', private.address_hash(i ->> 'address'),
           i ->> 'channel', i ->> 'kind', i ->> 'scope', i ->> 'scope_ref', i ->> 'source', i -> 'evidence',
           (i ->> 'occurred_at')::timestamptz, p_api_key_id
      FROM jsonb_array_elements(v_items) i
     WHERE i ->> 'id' IS NOT NULL
    RETURNING *
  )
  SELECT coalesce(jsonb_agg(
           CASE WHEN x.id IS NOT NULL THEN
             jsonb_build_object('index', (i ->> 'idx')::int, 'status', 201,
                                'event', private.consent_event_json(x::app.consent_events))
           ELSE jsonb_build_object('index', (i ->> 'idx')::int, 'status', (i #>> '{problem,status}')::int,
                                   'problem', i -> 'problem')
           END ORDER BY (i ->> 'idx')::int), '[]')
    INTO v_results
    FROM jsonb_array_elements(v_items) i
    LEFT JOIN inserted x ON x.id = (i ->> 'id')::bigint;

  PERFORM private.audit(p_tenant_id, p_api_key_id, 'consent.record', NULL,
                        jsonb_build_object('recorded', (SELECT count(*) FROM jsonb_array_elements(v_items) i
                                                         WHERE i ->> 'id' IS NOT NULL),
                                           'refused', (SELECT count(*) FROM jsonb_array_elements(v_items) i
                                                        WHERE i ->> 'id' IS NULL)));
  RETURN v_results;
END
$$;
COMMENT ON FUNCTION private.record_consents(uuid, uuid, jsonb) IS
  'Records consent events set-based, under the addresses'' locks; one result per item.';

-- The integrator's view of one consent event (also what api.consent_events shows).
CREATE OR REPLACE FUNCTION private.consent_event_json(e app.consent_events)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT jsonb_build_object(
    'id', e.id, 'address', e.address, 'kind', e.kind, 'channel', e.channel, 'scope', e.scope,
    'vertical', CASE WHEN e.scope = 'vertical' THEN e.scope_ref END,
    'sender', CASE WHEN e.scope = 'sender' THEN e.scope_ref END,
    'source', e.source, 'evidence', e.evidence, 'occurred_at', e.occurred_at, 'recorded_at', e.recorded_at)
$$;
COMMENT ON FUNCTION private.consent_event_json(app.consent_events) IS 'One consent event as the API shows it.';
