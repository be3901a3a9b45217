-- An inbound message from a provider's webhook (the API has verified its signature):
-- p_from the person, p_to the number written to, whose registry row (app.senders) says
-- whose it is (private.inbound_tenant); p_tenant_id, when the webhook URL names a
-- tenant (the older per-tenant URLs, kept as aliases), must be that owner (HM403
-- number_not_yours, HM404 unknown_number: nothing is recorded). In one transaction:
--   * deduplicated on the provider's message id (a retried webhook changes nothing);
--   * the conversation (tenant, from, to) is created or touched;
--   * a keyword (private.detect_keyword) records a consent event (source keyword, scope
--     tenant, evidence: the message) -- under the address lock, like any opt-out -- and
--     queues exactly one confirmation reply, a 'compliance' message from p_to to
--     p_from (the tenant's texts, else Hermes's defaults); HELP queues the help text;
--   * the message is stored (app.inbound_messages) with what it did.
-- The channel is the provider's: a keyword received over WhatsApp (provider 'whatsapp')
-- opts out of / into WhatsApp (STOPALL: every channel) and is answered over WhatsApp;
-- over SMS, SMS.
-- Returns {inbound_id, duplicate, keyword?, action?, consent_event_id?, reply_message_id?}.
CREATE OR REPLACE FUNCTION app.record_inbound(
  p_provider text, p_tenant_id uuid, p_provider_message_id text, p_from text, p_to text, p_body text,
  p_params jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_tenant  app.tenants;
  v_kw      record;
  v_prior   app.inbound_dedup;
  v_id      bigint;
  v_event   jsonb;
  v_reply   jsonb;
  v_text    text;
  v_policy  app.tenant_policies;
  v_channel text := CASE WHEN p_provider = 'whatsapp' THEN 'whatsapp' ELSE 'sms' END;
  v_owner   record;
BEGIN
  IF p_tenant_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM app.tenants t WHERE t.id = p_tenant_id) THEN
    PERFORM private.raise_problem(404, 'tenant_not_found', 'No such tenant for this inbound URL.');
  END IF;
  IF private.address_key(p_from) IS NULL OR p_from !~ '^\+' OR private.address_key(p_to) IS NULL THEN
    PERFORM private.raise_problem(422, 'invalid_address', 'Inbound From and To must be E.164 numbers.');
  END IF;
  v_owner := private.inbound_tenant(v_channel, p_to, p_tenant_id);
  IF v_owner.problem_code IS NOT NULL THEN
    PERFORM private.raise_problem(v_owner.problem_status, v_owner.problem_code, v_owner.problem_detail,
                                  v_owner.problem_hint);
  END IF;
  SELECT * INTO v_tenant FROM app.tenants WHERE id = v_owner.tenant_id;
  p_tenant_id := v_tenant.id;
  IF p_provider_message_id IS NULL OR length(p_provider_message_id) NOT BETWEEN 1 AND 64 THEN
    PERFORM private.raise_problem(422, 'invalid_message_id', 'An inbound message needs the provider''s id.');
  END IF;

  v_id := nextval('app.inbound_messages_id_seq');
  INSERT INTO app.inbound_dedup (provider, provider_message_id, tenant_id, inbound_id, received_at)
  VALUES (p_provider, p_provider_message_id, p_tenant_id, v_id, now())
  ON CONFLICT (tenant_id, provider, provider_message_id) DO NOTHING;
  IF NOT FOUND THEN
    SELECT * INTO v_prior FROM app.inbound_dedup
     WHERE tenant_id = p_tenant_id AND provider = p_provider AND provider_message_id = p_provider_message_id;
    RETURN jsonb_build_object('inbound_id', v_prior.inbound_id, 'duplicate', true);
  END IF;

  INSERT INTO app.conversations AS c (tenant_id, contact_address, sender_address, last_inbound_at, inbound_count)
  VALUES (p_tenant_id, p_from, p_to, now(), 1)
  ON CONFLICT (tenant_id, contact_address, sender_address) DO UPDATE
    SET last_inbound_at = now(), inbound_count = c.inbound_count + 1;

  v_kw := private.detect_keyword(p_body);
  SELECT * INTO v_policy FROM app.tenant_policies WHERE tenant_id = p_tenant_id;
  IF v_kw.action IN ('opt_out', 'opt_in') THEN
    v_event := private.record_consents(p_tenant_id, NULL, jsonb_build_array(jsonb_build_object(
      'address', p_from, 'kind', v_kw.action,
      'channel', CASE WHEN v_kw.channel = 'sms' THEN v_channel ELSE v_kw.channel END, 'source', 'keyword',
      'occurred_at', clock_timestamp(),
      'evidence', jsonb_build_object('provider', p_provider, 'provider_message_id', p_provider_message_id,
                                     'to', p_to, 'body', left(p_body, 320), 'keyword', v_kw.keyword,
                                     'inbound_id', v_id)))) -> 0 -> 'event';
  END IF;
  v_text := CASE v_kw.action
    WHEN 'opt_out' THEN coalesce(v_policy.opt_out_reply, format(
      '%s: you are unsubscribed and will receive no more messages. Reply START to resubscribe.', v_tenant.name))
    WHEN 'opt_in' THEN coalesce(v_policy.opt_in_reply, format(
      '%s: you are subscribed again. Reply STOP to unsubscribe, HELP for help.', v_tenant.name))
    WHEN 'help' THEN coalesce(v_policy.help_reply, format(
      '%s: reply STOP to unsubscribe. Msg & data rates may apply.', v_tenant.name))
  END;
  IF v_text IS NOT NULL THEN
    v_reply := private.accept_messages(p_tenant_id, p_to, NULL, jsonb_build_array(jsonb_build_object(
      'request', jsonb_build_object('channel', v_channel, 'to', p_from, 'from', p_to,
                                    'body', left(v_text, 320), 'category', 'compliance'),
      'key', NULL)), true) -> 0;
  END IF;

  INSERT INTO app.inbound_messages (id, tenant_id, provider, provider_message_id, from_address, to_address, body,
                                    keyword, action, consent_event_id, reply_message_id, params)
  VALUES (v_id, p_tenant_id, p_provider, p_provider_message_id, p_from, p_to, p_body, v_kw.keyword, v_kw.action,
          (v_event ->> 'id')::bigint, (v_reply #>> '{message,id}')::uuid, coalesce(p_params, '{}'));
  RETURN jsonb_strip_nulls(jsonb_build_object(
    'inbound_id', v_id, 'duplicate', false, 'keyword', v_kw.keyword, 'action', v_kw.action,
    'consent_event_id', (v_event ->> 'id')::bigint, 'reply_message_id', v_reply #>> '{message,id}',
    'reply_status', v_reply #>> '{message,status}'));
END
$$;
COMMENT ON FUNCTION app.record_inbound(text, uuid, text, text, text, text, jsonb) IS
  'Records an inbound message: conversation, keyword -> consent event + one confirmation reply; deduplicated.';
REVOKE ALL ON FUNCTION app.record_inbound(text, uuid, text, text, text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.record_inbound(text, uuid, text, text, text, text, jsonb) TO hermes_api;

-- Inbound WhatsApp messages from one verified webhook body (Meta's webhook is the app's,
-- not a tenant's: the tenant is the one whose WhatsApp business number received it, by
-- the sender registry, private.inbound_tenant). p_messages = [{id, from, to, body,
-- params}], each recorded as app.record_inbound records an SMS (keywords -> consent on
-- the whatsapp channel, one reply over WhatsApp). A number that is no one tenant's is
-- not recorded: {id, skipped: 'unknown_number' | 'shared_number'}. Returns one result
-- per message.
CREATE OR REPLACE FUNCTION app.record_whatsapp_inbound(p_messages jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_msg     jsonb;
  v_owner   record;
  v_results jsonb := '[]';
BEGIN
  IF jsonb_typeof(p_messages) IS DISTINCT FROM 'array' THEN
    PERFORM private.raise_problem(422, 'invalid_inbound', 'Inbound messages must be a JSON array.');
  END IF;
  FOR v_msg IN SELECT m FROM jsonb_array_elements(p_messages) m LOOP
    v_owner := private.inbound_tenant('whatsapp', v_msg ->> 'to', NULL);
    IF v_owner.tenant_id IS NULL THEN
      v_results := v_results || jsonb_build_array(jsonb_build_object(
        'id', v_msg ->> 'id', 'skipped', v_owner.problem_code));
      CONTINUE;
    END IF;
    v_results := v_results || jsonb_build_array(jsonb_build_object('id', v_msg ->> 'id', 'tenant_id', v_owner.tenant_id)
      || app.record_inbound('whatsapp', v_owner.tenant_id, v_msg ->> 'id',
                            coalesce(private.normalize_phone(v_msg ->> 'from'), v_msg ->> 'from'),
                            private.normalize_phone(v_msg ->> 'to'),
                            coalesce(v_msg ->> 'body', ''), coalesce(v_msg -> 'params', '{}')));
  END LOOP;
  RETURN v_results;
END
$$;
COMMENT ON FUNCTION app.record_whatsapp_inbound(jsonb) IS
  'Records the inbound WhatsApp messages of a webhook, each for the tenant whose business number received it.';
REVOKE ALL ON FUNCTION app.record_whatsapp_inbound(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.record_whatsapp_inbound(jsonb) TO hermes_api;
