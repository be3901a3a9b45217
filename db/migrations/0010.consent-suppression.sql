-- The compliance ledgers: consent events and suppression events (append-only), the
-- current state derived from each (caches maintained by statement triggers, rebuildable
-- from the ledgers: private.rebuild_consent_state / private.rebuild_suppressions), the
-- tenant's default country for phone numbers typed in national form, and the
-- messages' compliance fields (vertical, category, the reasons of a refusal).
--
-- Addresses are keyed by private.address_hash: sha256 of a secret pepper and the
-- canonical address (E.164 for phones, lower-cased for emails). The plain address is
-- kept beside it for people to read; an erasure clears it and keeps the hash, so an
-- erased person stays suppressed without Hermes keeping who they were.
-- depends: 0009.requeue-after

-- A pepper for the address hashes (never rotate it: every stored hash depends on it).
INSERT INTO private.settings (key, value)
VALUES ('address_pepper', replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''));

ALTER TABLE app.tenants
  ADD COLUMN default_country text NOT NULL DEFAULT 'US' CHECK (default_country ~ '^[A-Z]{2}$');
COMMENT ON COLUMN app.tenants.default_country IS
  'ISO 3166 region used to read phone numbers typed without a country code ("(415) 555-0100").';

ALTER TABLE app.api_keys DROP CONSTRAINT api_keys_scopes_check;
ALTER TABLE app.api_keys ADD CONSTRAINT api_keys_scopes_check CHECK (
  cardinality(scopes) > 0
  AND scopes <@ ARRAY['admin', 'messages:write', 'keys:write', 'read', 'compliance:write']);
COMMENT ON COLUMN app.api_keys.scopes IS 'admin (platform), messages:write, keys:write, read, compliance:write.';

-- Messages: what the compliance rules need, and why Hermes refused one.
ALTER TABLE app.messages
  ADD COLUMN vertical text CHECK (vertical ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
  ADD COLUMN category text NOT NULL DEFAULT 'marketing' CHECK (category IN ('marketing', 'transactional')),
  ADD COLUMN reasons  jsonb;
COMMENT ON COLUMN app.messages.vertical IS 'The line of business the message belongs to (cooldowns are per vertical).';
COMMENT ON COLUMN app.messages.category IS 'marketing (quiet hours and cooldowns apply) or transactional.';
COMMENT ON COLUMN app.messages.reasons IS
  'Why Hermes refused (status rejected) or deferred it: [{code, ...}], e.g. opted_out, suppressed.';

ALTER TABLE app.message_events DROP CONSTRAINT message_events_event_type_check;
ALTER TABLE app.message_events ADD CONSTRAINT message_events_event_type_check CHECK (event_type IN (
  'accepted', 'claimed', 'reclaimed', 'reclaim_deferred', 'reconciled', 'reconcile_ambiguous',
  'resend', 'handed_off', 'requeued', 'receipt_timeout',
  'send_error', 'retry_scheduled', 'provider_status', 'rejected', 'deferred'));

-- The consent ledger. One row per event: an opt-in or an opt-out of one address, for
-- one channel (or all), at one scope: global (every tenant: operators only), tenant,
-- vertical (scope_ref: the vertical) or sender (scope_ref: the sender's address).
CREATE SEQUENCE app.consent_events_id_seq AS bigint;
CREATE TABLE app.consent_events (
  id           bigint NOT NULL DEFAULT nextval('app.consent_events_id_seq'),
  recorded_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  tenant_id    uuid,
  address      text,   -- the canonical address; NULL once erased
  address_hash bytea NOT NULL CHECK (length(address_hash) = 32),
  channel      text NOT NULL CHECK (channel IN ('sms', 'email', 'push', 'whatsapp', 'all')),
  kind         text NOT NULL CHECK (kind IN ('opt_in', 'opt_out')),
  scope        text NOT NULL CHECK (scope IN ('global', 'tenant', 'vertical', 'sender')),
  scope_ref    text NOT NULL DEFAULT '',
  source       text NOT NULL CHECK (source IN (
                 'api', 'keyword', 'import', 'provider_error', 'complaint', 'bounce', 'operator')),
  evidence     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(evidence) = 'object'),
  occurred_at  timestamptz NOT NULL,
  api_key_id   uuid,
  PRIMARY KEY (id, recorded_at),
  CHECK ((scope = 'global') = (tenant_id IS NULL)),
  CHECK ((scope IN ('vertical', 'sender')) = (scope_ref <> ''))
) PARTITION BY RANGE (recorded_at);
ALTER SEQUENCE app.consent_events_id_seq OWNED BY app.consent_events.id;
CREATE INDEX consent_events_tenant_recorded_idx ON app.consent_events (tenant_id, recorded_at DESC, id DESC);
CREATE INDEX consent_events_address_idx ON app.consent_events (address_hash);
COMMENT ON TABLE app.consent_events IS
  E'Append-only consent ledger: opt-ins and opt-outs per address, channel and scope, with source\n'
  'and evidence. app.consent_state is derived from it.';

CREATE TRIGGER _010_append_only BEFORE UPDATE OR DELETE ON app.consent_events
  FOR EACH ROW EXECUTE FUNCTION private.tg_append_only();
CREATE TRIGGER _011_append_only_truncate BEFORE TRUNCATE ON app.consent_events
  FOR EACH STATEMENT EXECUTE FUNCTION private.tg_append_only();

-- Current consent, one row per (tenant, address, channel, scope, scope_ref) cell: the
-- latest opt-out and the latest opt-in of that cell. Maintained by the ledger's
-- statement trigger; private.rebuild_consent_state() recomputes it from the ledger.
CREATE TABLE app.consent_state (
  tenant_id        uuid,
  address_hash     bytea NOT NULL,
  channel          text NOT NULL,
  scope            text NOT NULL,
  scope_ref        text NOT NULL,
  address          text,   -- as the ledger has it (NULL once erased)
  last_opt_out_at  timestamptz,
  last_opt_out_id  bigint,
  last_opt_in_at   timestamptz,
  last_opt_in_id   bigint,
  updated_at       timestamptz NOT NULL DEFAULT now(),
  CHECK ((scope = 'global') = (tenant_id IS NULL))
);
-- NULLS NOT DISTINCT: one global cell per key too (tenant_id NULL).
CREATE UNIQUE INDEX consent_state_key ON app.consent_state (tenant_id, address_hash, channel, scope, scope_ref)
  NULLS NOT DISTINCT;
COMMENT ON TABLE app.consent_state IS
  'Derived from app.consent_events (latest opt-out and opt-in per cell); rebuildable, checked against it.';

-- The suppression ledger: an address added to or removed from a list, by a tenant or
-- globally (tenant_id NULL: operators). Lists: do_not_contact, litigator, hard_bounce,
-- complaint; erasure (a tombstone: no address, never removed).
CREATE SEQUENCE app.suppression_events_id_seq AS bigint;
CREATE TABLE app.suppression_events (
  id           bigint NOT NULL DEFAULT nextval('app.suppression_events_id_seq'),
  recorded_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  tenant_id    uuid,
  address      text,
  address_hash bytea NOT NULL CHECK (length(address_hash) = 32),
  list         text NOT NULL CHECK (list IN ('do_not_contact', 'litigator', 'hard_bounce', 'complaint', 'erasure')),
  action       text NOT NULL CHECK (action IN ('add', 'remove')),
  source       text NOT NULL CHECK (source IN ('api', 'import', 'provider_error', 'complaint', 'bounce',
                                               'erasure', 'operator')),
  reason       text CHECK (length(reason) <= 500),
  evidence     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(evidence) = 'object'),
  api_key_id   uuid,
  PRIMARY KEY (id, recorded_at),
  CHECK (list <> 'erasure' OR (action = 'add' AND address IS NULL))
) PARTITION BY RANGE (recorded_at);
ALTER SEQUENCE app.suppression_events_id_seq OWNED BY app.suppression_events.id;
CREATE INDEX suppression_events_tenant_recorded_idx ON app.suppression_events (tenant_id, recorded_at DESC, id DESC);
CREATE INDEX suppression_events_address_idx ON app.suppression_events (address_hash);
COMMENT ON TABLE app.suppression_events IS
  'Append-only suppression ledger (add/remove per list); app.suppressions is derived from it.';

CREATE TRIGGER _010_append_only BEFORE UPDATE OR DELETE ON app.suppression_events
  FOR EACH ROW EXECUTE FUNCTION private.tg_append_only();
CREATE TRIGGER _011_append_only_truncate BEFORE TRUNCATE ON app.suppression_events
  FOR EACH STATEMENT EXECUTE FUNCTION private.tg_append_only();

-- Current suppressions: one row per (tenant, address, list) that is added and not removed.
CREATE TABLE app.suppressions (
  tenant_id    uuid,
  address_hash bytea NOT NULL,
  list         text NOT NULL,
  address      text,
  event_id     bigint NOT NULL,
  reason       text,
  added_at     timestamptz NOT NULL
);
CREATE UNIQUE INDEX suppressions_key ON app.suppressions (tenant_id, address_hash, list) NULLS NOT DISTINCT;
CREATE INDEX suppressions_tenant_added_idx ON app.suppressions (tenant_id, added_at DESC);
COMMENT ON TABLE app.suppressions IS
  'Derived from app.suppression_events: the addresses on each list now; rebuildable, checked against it.';

-- Row-level security: the read API sees its tenant's rows only (global rows stay with
-- the operators; a refusal because of one still names it in the message's reasons).
ALTER TABLE app.consent_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.consent_events FORCE ROW LEVEL SECURITY;
ALTER TABLE app.consent_state ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.consent_state FORCE ROW LEVEL SECURITY;
ALTER TABLE app.suppression_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.suppression_events FORCE ROW LEVEL SECURITY;
ALTER TABLE app.suppressions ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.suppressions FORCE ROW LEVEL SECURITY;
CREATE POLICY consent_events_integrator_select ON app.consent_events FOR SELECT TO hermes_integrator
  USING (tenant_id = nullif(current_setting('hermes.tenant_id', true), '')::uuid);
CREATE POLICY consent_state_integrator_select ON app.consent_state FOR SELECT TO hermes_integrator
  USING (tenant_id = nullif(current_setting('hermes.tenant_id', true), '')::uuid);
CREATE POLICY suppression_events_integrator_select ON app.suppression_events FOR SELECT TO hermes_integrator
  USING (tenant_id = nullif(current_setting('hermes.tenant_id', true), '')::uuid);
CREATE POLICY suppressions_integrator_select ON app.suppressions FOR SELECT TO hermes_integrator
  USING (tenant_id = nullif(current_setting('hermes.tenant_id', true), '')::uuid);

REVOKE ALL ON app.consent_events, app.consent_state, app.suppression_events, app.suppressions FROM PUBLIC;
GRANT SELECT ON app.consent_events, app.consent_state, app.suppression_events, app.suppressions
  TO hermes_integrator, hermes_anon;

-- The caches follow their ledgers through statement triggers with transition tables
-- (set-based: one upsert per statement, whatever the rows). Their bodies are in
-- db/functions/private/consent_state.sql and suppressions.sql (repeatable); these
-- placeholders only let the triggers be created here.
CREATE FUNCTION private.tg_consent_state() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END';
CREATE FUNCTION private.tg_suppressions() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END';
CREATE TRIGGER _020_consent_state AFTER INSERT ON app.consent_events
  REFERENCING NEW TABLE AS new_events
  FOR EACH STATEMENT EXECUTE FUNCTION private.tg_consent_state();
CREATE TRIGGER _020_suppressions AFTER INSERT ON app.suppression_events
  REFERENCING NEW TABLE AS new_events
  FOR EACH STATEMENT EXECUTE FUNCTION private.tg_suppressions();

-- One message to check (private.send_eligibility takes an array of them).
CREATE TYPE private.send_candidate AS (
  idx          int,
  tenant_id    uuid,
  channel      text,
  to_address   text,
  from_address text,
  vertical     text,
  category     text
);

-- Intake carries the compliance fields and a refusal's reasons.
ALTER TYPE private.intake_item
  ADD ATTRIBUTE channel text, ADD ATTRIBUTE vertical text, ADD ATTRIBUTE category text,
  ADD ATTRIBUTE reasons jsonb;
