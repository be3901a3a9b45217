-- Quiet hours, cooldowns and content dedup: the rules' data.
--   private.quiet_hour_rules  legal windows by country / state (and weekday), a reference
--                             table of the deployment (not tenant data);
--   app.tenant_policies       a tenant's own policy: its quiet window (only ever narrows
--                             the legal ones), cooldowns, content-dedup window, default
--                             category; app.vertical_policies per vertical;
--   app.contact_history       the cooldown store: per tenant, recipient and vertical the
--                             last contact (written by the claim, in its transaction, or
--                             seeded from a legacy system's history);
--   app.recent_contents       the content-dedup store (recipient + body hash, last sent).
-- Messages get the status 'scheduled' (deferred to the next allowed time, a pgqueuer job
-- due then) and scheduled_at.
-- depends: 0011.phone-zones

ALTER TABLE app.messages DROP CONSTRAINT messages_status_check;
ALTER TABLE app.messages ADD CONSTRAINT messages_status_check CHECK (status IN (
  'scheduled',    -- accepted, deferred to scheduled_at (quiet hours)
  'queued', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'rejected', 'unknown'));
ALTER TABLE app.messages ADD COLUMN scheduled_at timestamptz;
COMMENT ON COLUMN app.messages.scheduled_at IS 'When a deferred message may go (the recipient''s quiet hours end).';

-- Legal sending windows, local time of the recipient. Every applicable rule narrows the
-- window (they intersect): the default '*', the country's, the state's; a weekday rule
-- (isodow 1 = Monday .. 7 = Sunday) applies on that day only. Sources are given per
-- row; verify with counsel before relying on them.
CREATE TABLE private.quiet_hour_rules (
  country     text NOT NULL CHECK (country = '*' OR country ~ '^[A-Z]{2}$'),
  region      text NOT NULL DEFAULT '*' CHECK (region = '*' OR region ~ '^[A-Z]{2}$'),
  isodow      int CHECK (isodow BETWEEN 1 AND 7),
  start_local time NOT NULL,
  end_local   time NOT NULL,
  source      text NOT NULL,
  CHECK (start_local < end_local),
  CHECK (country <> '*' OR region = '*'),
  UNIQUE NULLS NOT DISTINCT (country, region, isodow)
);
COMMENT ON TABLE private.quiet_hour_rules IS
  'Legal sending windows (recipient''s local time) by country, state and weekday; all applicable rules intersect.';
INSERT INTO private.quiet_hour_rules (country, region, isodow, start_local, end_local, source) VALUES
  ('*', '*', NULL, '08:00', '21:00', 'Hermes default'),
  ('US', '*', NULL, '08:00', '21:00', 'TCPA, 47 CFR 64.1200(c)(1)'),
  ('US', 'FL', NULL, '08:00', '20:00', 'Florida Telephone Solicitation Act, Fla. Stat. 501.059(8)(a)'),
  ('US', 'OK', NULL, '08:00', '20:00', 'Oklahoma Telephone Solicitation Act, 15 O.S. 775C.4'),
  ('US', 'MD', NULL, '08:00', '20:00', 'Maryland Stop the Spam Calls Act (2023)'),
  ('US', 'TX', NULL, '09:00', '21:00', 'Tex. Bus. & Com. Code 301.051 (Monday-Saturday)'),
  ('US', 'TX', 7, '12:00', '21:00', 'Tex. Bus. & Com. Code 301.051 (Sunday)');
-- The rules' version, recorded with every decision: bump it with each change.
INSERT INTO private.settings (key, value) VALUES ('quiet_hour_rules', '2026-12-02');

CREATE TABLE app.tenant_policies (
  tenant_id            uuid PRIMARY KEY REFERENCES app.tenants (id) ON DELETE CASCADE,
  quiet_start          time NOT NULL DEFAULT '08:00',
  quiet_end            time NOT NULL DEFAULT '21:00',
  cooldown_same        interval NOT NULL DEFAULT '90 days' CHECK (cooldown_same >= interval '0'),
  cooldown_cross       interval NOT NULL DEFAULT '45 days' CHECK (cooldown_cross >= interval '0'),
  content_dedup_window interval NOT NULL DEFAULT '10 minutes'
                       CHECK (content_dedup_window BETWEEN interval '0' AND interval '7 days'),
  default_category     text NOT NULL DEFAULT 'marketing' CHECK (default_category IN ('marketing', 'transactional')),
  version              int NOT NULL DEFAULT 1,
  updated_at           timestamptz NOT NULL DEFAULT now(),
  CHECK (quiet_start < quiet_end)
);
COMMENT ON TABLE app.tenant_policies IS
  E'A tenant''s compliance policy (a missing row means the defaults): its quiet window narrows the\n'
  'legal ones, never widens them; cooldowns (same vertical 90 days, another vertical 45 days);\n'
  'content-dedup window (10 minutes); the category of messages that name none.';

CREATE TABLE app.vertical_policies (
  tenant_id      uuid NOT NULL REFERENCES app.tenants (id) ON DELETE CASCADE,
  vertical       text NOT NULL CHECK (vertical ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
  cooldown_same  interval CHECK (cooldown_same >= interval '0'),
  cooldown_cross interval CHECK (cooldown_cross >= interval '0'),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, vertical)
);
COMMENT ON TABLE app.vertical_policies IS 'Per-vertical cooldowns of a tenant (NULL: the tenant''s).';

-- vertical '*': a contact of unknown vertical (a legacy seed): it counts as the same
-- vertical for every message, so the longer cooldown applies.
CREATE TABLE app.contact_history (
  tenant_id       uuid NOT NULL,
  address_hash    bytea NOT NULL,
  vertical        text NOT NULL,
  last_contact_at timestamptz NOT NULL,
  last_message_id uuid,
  from_address    text,
  source          text NOT NULL DEFAULT 'send' CHECK (source IN ('send', 'import')),
  PRIMARY KEY (tenant_id, address_hash, vertical)
);
COMMENT ON TABLE app.contact_history IS
  'The cooldown store: last contact per (tenant, recipient, vertical); vertical * = unknown (legacy seed).';

CREATE TABLE app.recent_contents (
  tenant_id    uuid NOT NULL,
  address_hash bytea NOT NULL,
  content_hash bytea NOT NULL,
  last_at      timestamptz NOT NULL,
  message_id   uuid NOT NULL,
  PRIMARY KEY (tenant_id, address_hash, content_hash)
);
CREATE INDEX recent_contents_last_at_idx ON app.recent_contents (last_at);
COMMENT ON TABLE app.recent_contents IS
  'Content dedup: the last message of each (tenant, recipient, body) (pruned after a day by maintenance).';

ALTER TYPE private.send_candidate ADD ATTRIBUTE message_id uuid;

ALTER TABLE app.tenant_policies ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.tenant_policies FORCE ROW LEVEL SECURITY;
ALTER TABLE app.vertical_policies ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.vertical_policies FORCE ROW LEVEL SECURITY;
ALTER TABLE app.contact_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.contact_history FORCE ROW LEVEL SECURITY;
ALTER TABLE app.recent_contents ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.recent_contents FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_policies_integrator_select ON app.tenant_policies FOR SELECT TO hermes_integrator
  USING (tenant_id = nullif(current_setting('hermes.tenant_id', true), '')::uuid);
CREATE POLICY vertical_policies_integrator_select ON app.vertical_policies FOR SELECT TO hermes_integrator
  USING (tenant_id = nullif(current_setting('hermes.tenant_id', true), '')::uuid);
CREATE POLICY contact_history_integrator_select ON app.contact_history FOR SELECT TO hermes_integrator
  USING (tenant_id = nullif(current_setting('hermes.tenant_id', true), '')::uuid);
CREATE POLICY recent_contents_integrator_select ON app.recent_contents FOR SELECT TO hermes_integrator
  USING (tenant_id = nullif(current_setting('hermes.tenant_id', true), '')::uuid);
REVOKE ALL ON app.tenant_policies, app.vertical_policies, app.contact_history, app.recent_contents,
              private.quiet_hour_rules FROM PUBLIC;
