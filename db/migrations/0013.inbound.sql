-- Inbound messages and conversations: what recipients write back. A message from
-- an address to one of the tenant's senders belongs to the conversation (tenant,
-- contact address, sender address); keywords in it (STOP, START, HELP...) become
-- consent events and exactly one confirmation reply each. Replies Hermes sends on its
-- own account are messages of category 'compliance': exempt from consent (a STOP
-- confirmation goes to a number that just opted out), quiet hours, cooldowns and
-- dedup, never from suppression lists.
-- depends: 0012.quiet-hours-cooldowns

-- Their repeatable files now take p_internal (Hermes's own 'compliance' messages).
DROP FUNCTION IF EXISTS private.accept_messages(uuid, text, uuid, jsonb);
DROP FUNCTION IF EXISTS private.validate_message(jsonb, text);

ALTER TABLE app.messages DROP CONSTRAINT messages_category_check;
ALTER TABLE app.messages ADD CONSTRAINT messages_category_check
  CHECK (category IN ('marketing', 'transactional', 'compliance'));
COMMENT ON COLUMN app.messages.category IS
  'marketing (quiet hours and cooldowns apply), transactional, or compliance (Hermes''s keyword replies).';

CREATE TABLE app.conversations (
  tenant_id        uuid NOT NULL,
  contact_address  text NOT NULL,   -- the person (E.164)
  sender_address   text NOT NULL,   -- the tenant's number they wrote to
  created_at       timestamptz NOT NULL DEFAULT now(),
  last_inbound_at  timestamptz NOT NULL,
  inbound_count    bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, contact_address, sender_address)
);
COMMENT ON TABLE app.conversations IS 'One per (tenant, contact, sender): the threads of inbound messages.';

CREATE SEQUENCE app.inbound_messages_id_seq AS bigint;
CREATE TABLE app.inbound_messages (
  id                  bigint NOT NULL DEFAULT nextval('app.inbound_messages_id_seq'),
  received_at         timestamptz NOT NULL DEFAULT now(),
  tenant_id           uuid NOT NULL,
  provider            text NOT NULL,
  provider_message_id text NOT NULL,
  from_address        text,          -- NULL once erased
  to_address          text NOT NULL,
  body                text,          -- NULL once erased
  keyword             text,          -- the keyword found (STOP, START, HELP...) or NULL
  action              text CHECK (action IN ('opt_out', 'opt_in', 'help')),
  consent_event_id    bigint,
  reply_message_id    uuid,
  params              jsonb NOT NULL DEFAULT '{}',
  PRIMARY KEY (id, received_at)
) PARTITION BY RANGE (received_at);
ALTER SEQUENCE app.inbound_messages_id_seq OWNED BY app.inbound_messages.id;
CREATE INDEX inbound_messages_tenant_received_idx ON app.inbound_messages (tenant_id, received_at DESC, id DESC);
CREATE INDEX inbound_messages_conversation_idx ON app.inbound_messages (tenant_id, from_address, to_address, received_at);
-- Providers retry webhooks: one row per provider message, whatever the retries.
CREATE TABLE app.inbound_dedup (
  provider            text NOT NULL,
  provider_message_id text NOT NULL,
  tenant_id           uuid NOT NULL,
  inbound_id          bigint NOT NULL,
  received_at         timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, provider, provider_message_id)
);
COMMENT ON TABLE app.inbound_messages IS
  'Append-only: every message recipients sent to a tenant''s numbers, with the keyword and what it did.';

CREATE TRIGGER _010_append_only BEFORE UPDATE OR DELETE ON app.inbound_messages
  FOR EACH ROW EXECUTE FUNCTION private.tg_append_only();
CREATE TRIGGER _011_append_only_truncate BEFORE TRUNCATE ON app.inbound_messages
  FOR EACH STATEMENT EXECUTE FUNCTION private.tg_append_only();

ALTER TABLE app.conversations ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.conversations FORCE ROW LEVEL SECURITY;
ALTER TABLE app.inbound_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.inbound_messages FORCE ROW LEVEL SECURITY;
ALTER TABLE app.inbound_dedup ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.inbound_dedup FORCE ROW LEVEL SECURITY;
CREATE POLICY conversations_integrator_select ON app.conversations FOR SELECT TO hermes_integrator
  USING (tenant_id = nullif(current_setting('hermes.tenant_id', true), '')::uuid);
CREATE POLICY inbound_messages_integrator_select ON app.inbound_messages FOR SELECT TO hermes_integrator
  USING (tenant_id = nullif(current_setting('hermes.tenant_id', true), '')::uuid);
CREATE POLICY inbound_dedup_integrator_select ON app.inbound_dedup FOR SELECT TO hermes_integrator
  USING (tenant_id = nullif(current_setting('hermes.tenant_id', true), '')::uuid);
REVOKE ALL ON app.conversations, app.inbound_messages, app.inbound_dedup FROM PUBLIC;
GRANT SELECT ON app.conversations, app.inbound_messages TO hermes_integrator, hermes_anon;

-- The replies' texts, per tenant (defaults when unset).
ALTER TABLE app.tenant_policies
  ADD COLUMN opt_out_reply text CHECK (length(opt_out_reply) BETWEEN 1 AND 320),
  ADD COLUMN opt_in_reply  text CHECK (length(opt_in_reply) BETWEEN 1 AND 320),
  ADD COLUMN help_reply    text CHECK (length(help_reply) BETWEEN 1 AND 320);
