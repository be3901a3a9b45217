-- The message store: messages, their provider attempts and their event ledger, plus
-- idempotency keys.
--
-- Partitioning: every table here is partitioned by month on the *message's*
-- created_at, so a message, its attempts and its events live in the same month and
-- a receipt for an old message lands next to it. Ids are UUIDv7 whose timestamp is
-- that created_at (private.uuid7), so any id alone prunes to its partition
-- (private.uuid7_time). There are no foreign keys into these tables: they are
-- joined by (id, created_at) and checked by the functions that write them.
-- Partitions are created ahead of time by app.ensure_partitions(), which migrate
-- and a pgqueuer schedule run.
-- depends: 0003.tenancy

CREATE TABLE app.messages (
  id                  uuid NOT NULL,
  created_at          timestamptz NOT NULL,
  tenant_id           uuid NOT NULL,
  api_key_id          uuid,
  channel             text NOT NULL DEFAULT 'sms' CHECK (channel IN ('sms')),
  to_address          text NOT NULL,
  from_address        text NOT NULL,
  body                text NOT NULL,
  status              text NOT NULL DEFAULT 'queued' CHECK (status IN (
                        'queued',       -- accepted by Hermes, waiting for a worker
                        'sending',      -- a worker claimed it
                        'sent',         -- the provider accepted it
                        'delivered',    -- terminal: the handset got it
                        'undelivered',  -- terminal: the carrier could not deliver it
                        'failed',       -- terminal: the provider refused or failed it
                        'rejected',     -- terminal: Hermes did not send it
                        'unknown')),    -- terminal: handed off, but no final receipt in time
  provider            text,
  provider_message_id text,
  error_code          text,
  error_message       text,
  idempotency_key     text,
  updated_at          timestamptz NOT NULL DEFAULT now(),
  sent_at             timestamptz,
  completed_at        timestamptz,
  PRIMARY KEY (id, created_at),
  CHECK ((completed_at IS NOT NULL) = (status IN ('delivered', 'undelivered', 'failed', 'rejected', 'unknown')))
) PARTITION BY RANGE (created_at);
CREATE INDEX messages_tenant_created_idx ON app.messages (tenant_id, created_at DESC, id);
COMMENT ON TABLE app.messages IS
  'One row per accepted message. Status only moves forward and ends in exactly one terminal state.';
COMMENT ON COLUMN app.messages.id IS 'UUIDv7 whose timestamp equals created_at.';
COMMENT ON COLUMN app.messages.error_code IS 'Machine-readable reason of a terminal failure, e.g. twilio:30003.';

CREATE TABLE app.message_attempts (
  id                   uuid NOT NULL,
  message_created_at   timestamptz NOT NULL,
  message_id           uuid NOT NULL,
  tenant_id            uuid NOT NULL,
  attempt_no           int NOT NULL CHECK (attempt_no > 0),
  channel              text NOT NULL,
  provider             text NOT NULL,
  status               text NOT NULL DEFAULT 'pending' CHECK (status IN (
                         'pending',      -- waiting for a worker
                         'claimed',      -- a worker may be calling the provider: outcome unknown
                         'handed_off',   -- the provider accepted it (provider_message_id set)
                         'delivered', 'undelivered', 'failed',
                         'rejected',     -- not sent: ineligible at claim time
                         'unknown')),    -- handed off, no final receipt within receipt_timeout
  claim_count          int NOT NULL DEFAULT 0,
  claimed_at           timestamptz,    -- first claim
  last_claimed_at      timestamptz,    -- latest claim: starts its lease
  handed_off_at        timestamptz,
  provider_message_id  text,
  provider_status      text,
  provider_status_rank int NOT NULL DEFAULT 0,
  error_code           text,
  error_message        text,
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (id, message_created_at),
  UNIQUE (message_id, message_created_at, attempt_no)
) PARTITION BY RANGE (message_created_at);
-- The maintenance sweep looks for open attempts that nothing is working on.
CREATE INDEX message_attempts_open_idx
  ON app.message_attempts (updated_at) WHERE status IN ('pending', 'claimed');
CREATE INDEX message_attempts_handed_off_idx
  ON app.message_attempts (handed_off_at) WHERE status = 'handed_off';
CREATE INDEX message_attempts_provider_id_idx
  ON app.message_attempts (provider, provider_message_id) WHERE provider_message_id IS NOT NULL;
COMMENT ON TABLE app.message_attempts IS
  E'One row per provider step of a message. claim_count fences workers: a stale claim cannot\n'
  'resolve an attempt another worker has re-claimed.';
COMMENT ON COLUMN app.message_attempts.id IS
  'UUIDv7 stamped with the message''s created_at; carried in the provider status-callback URL.';

CREATE SEQUENCE app.message_events_id_seq AS bigint;
CREATE TABLE app.message_events (
  id                 bigint NOT NULL DEFAULT nextval('app.message_events_id_seq'),
  message_created_at timestamptz NOT NULL,
  message_id         uuid NOT NULL,
  tenant_id          uuid NOT NULL,
  attempt_id         uuid,
  event_type         text NOT NULL CHECK (event_type IN (
                       'accepted', 'claimed', 'reclaimed', 'reclaim_deferred', 'reconciled', 'reconcile_ambiguous',
                       'resend', 'handed_off', 'requeued', 'receipt_timeout',
                       'send_error', 'retry_scheduled', 'provider_status', 'rejected')),
  status             text,         -- the message status after the event
  provider_status    text,
  error_code         text,
  dedupe_key         text,         -- receipts: provider:sid:status, stored once
  details            jsonb NOT NULL DEFAULT '{}',
  created_at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (id, message_created_at)
) PARTITION BY RANGE (message_created_at);
ALTER SEQUENCE app.message_events_id_seq OWNED BY app.message_events.id;
CREATE INDEX message_events_message_idx ON app.message_events (message_id, message_created_at, id);
CREATE UNIQUE INDEX message_events_dedupe_idx
  ON app.message_events (message_id, message_created_at, dedupe_key) WHERE dedupe_key IS NOT NULL;
COMMENT ON TABLE app.message_events IS
  'Append-only ledger of what happened to each message: acceptance, claims, hand-offs, receipts.';

CREATE TRIGGER _010_append_only BEFORE UPDATE OR DELETE ON app.message_events
  FOR EACH ROW EXECUTE FUNCTION private.tg_append_only();
CREATE TRIGGER _011_append_only_truncate BEFORE TRUNCATE ON app.message_events
  FOR EACH STATEMENT EXECUTE FUNCTION private.tg_append_only();

-- How long a claim is presumed to be still talking to the provider. Longer than any
-- provider call may take (the workers' HERMES_PROVIDER_TIMEOUT, 15 s by default): a
-- re-claim within it is deferred, so a slow-but-alive worker is never raced by a
-- reconcile-and-resend.
INSERT INTO private.settings (key, value) VALUES ('claim_lease', '60 seconds');
-- How long after hand-off a message may wait for its final receipt before it ends as
-- 'unknown' (AWS End User Messaging uses 72 hours).
INSERT INTO private.settings (key, value) VALUES ('receipt_timeout', '72 hours');

CREATE TABLE app.idempotency_keys (
  tenant_id          uuid NOT NULL REFERENCES app.tenants (id) ON DELETE CASCADE,
  key                text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
  request_hash       bytea NOT NULL,
  message_id         uuid,
  message_created_at timestamptz,
  response           jsonb,
  created_at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON app.idempotency_keys (created_at);
COMMENT ON TABLE app.idempotency_keys IS
  'First response per (tenant, Idempotency-Key); replayed for the same request, 409 for another. Pruned after 7 days.';

ALTER TABLE app.messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.messages FORCE ROW LEVEL SECURITY;
ALTER TABLE app.message_attempts ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.message_attempts FORCE ROW LEVEL SECURITY;
ALTER TABLE app.message_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.message_events FORCE ROW LEVEL SECURITY;
ALTER TABLE app.idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.idempotency_keys FORCE ROW LEVEL SECURITY;

CREATE POLICY messages_integrator_select ON app.messages FOR SELECT TO hermes_integrator
  USING (tenant_id = nullif(current_setting('hermes.tenant_id', true), '')::uuid);
CREATE POLICY message_attempts_integrator_select ON app.message_attempts FOR SELECT TO hermes_integrator
  USING (tenant_id = nullif(current_setting('hermes.tenant_id', true), '')::uuid);
CREATE POLICY message_events_integrator_select ON app.message_events FOR SELECT TO hermes_integrator
  USING (tenant_id = nullif(current_setting('hermes.tenant_id', true), '')::uuid);
CREATE POLICY idempotency_keys_integrator_select ON app.idempotency_keys FOR SELECT TO hermes_integrator
  USING (tenant_id = nullif(current_setting('hermes.tenant_id', true), '')::uuid);

REVOKE ALL ON app.messages, app.message_attempts, app.message_events, app.idempotency_keys FROM PUBLIC;
-- The api views are security_invoker: the requesting role reads the base tables, and
-- row-level security (above) limits it to its tenant. hermes_anon has no policy: no rows.
GRANT SELECT ON app.messages, app.message_events TO hermes_integrator, hermes_anon;
