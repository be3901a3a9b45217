-- Throughput (issue: 1,000 messages a second): the receipt inbox and the tables the
-- batched send path needs.
--
-- A status callback used to lock its attempt and apply itself at once, so the three
-- callbacks of one attempt queued on that row lock together with its hand-off. Now a
-- callback is one cheap insert into app.receipts (the inbox: append-only, partitioned
-- like the message it belongs to, deduplicated on provider + provider message id +
-- status) plus a row in private.receipt_queue, and app.apply_receipts applies pending
-- receipts set-based, in batches, in rank order.
-- depends: 0004.messages

CREATE SEQUENCE app.receipts_id_seq AS bigint;
CREATE TABLE app.receipts (
  id                  bigint NOT NULL DEFAULT nextval('app.receipts_id_seq'),
  message_created_at  timestamptz NOT NULL,   -- the partition key: private.uuid7_time(attempt_id)
  attempt_id          uuid NOT NULL,
  tenant_id           uuid NOT NULL,
  provider            text NOT NULL,
  provider_message_id text NOT NULL,
  provider_status     text NOT NULL,
  error_code          text,                   -- the provider's own code (e.g. 30003)
  error_message       text,
  source              text NOT NULL CHECK (source IN (
                        'callback',   -- a signed status callback
                        'handoff',    -- the status the provider answered when it accepted the message
                        'lookup')),   -- a status read back from the provider (reconcile, lost receipts)
  payload             jsonb NOT NULL DEFAULT '{}',
  received_at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (id, message_created_at)
) PARTITION BY RANGE (message_created_at);
ALTER SEQUENCE app.receipts_id_seq OWNED BY app.receipts.id;
-- Deduplication: a status of one provider message is stored once, whatever path it
-- came by and however often. Never on the provider id alone: later statuses must get
-- through. (A provider message belongs to one attempt, so to one partition.)
CREATE UNIQUE INDEX receipts_dedupe_idx
  ON app.receipts (provider, provider_message_id, provider_status, message_created_at);
CREATE INDEX receipts_attempt_idx ON app.receipts (attempt_id, message_created_at);
-- A receipt lands in its message's month: every month that already has messages gets
-- its receipts partition now (private.ensure_partitions only keeps last month onwards).
DO $$
DECLARE
  v_part record;
BEGIN
  FOR v_part IN
    SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound
      FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'app.messages'::regclass
  LOOP
    EXECUTE format('CREATE TABLE IF NOT EXISTS app.%I PARTITION OF app.receipts %s',
                   replace(v_part.relname, 'messages_', 'receipts_'), v_part.bound);
  END LOOP;
END
$$;
COMMENT ON TABLE app.receipts IS
  E'The receipt inbox: every provider status Hermes learned, once per (provider, provider\n'
  'message id, status), append-only. app.apply_receipts applies them to attempts and messages.';

CREATE TRIGGER _010_append_only BEFORE UPDATE OR DELETE ON app.receipts
  FOR EACH ROW EXECUTE FUNCTION private.tg_append_only();
CREATE TRIGGER _011_append_only_truncate BEFORE TRUNCATE ON app.receipts
  FOR EACH STATEMENT EXECUTE FUNCTION private.tg_append_only();

-- Receipts not applied yet. Small and short-lived: a row is inserted with its receipt
-- and deleted when app.apply_receipts has applied it, in the same transaction as the
-- changes it caused.
CREATE TABLE private.receipt_queue (
  receipt_id         bigint PRIMARY KEY,
  message_created_at timestamptz NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
        autovacuum_vacuum_insert_threshold = 5000);
COMMENT ON TABLE private.receipt_queue IS 'Receipts waiting for app.apply_receipts (ids into app.receipts).';

-- Every provider status Hermes knows, its rank and the message status it implies:
-- joined set-based by the receipt applier (replaces the per-call private.twilio_status).
-- rank >= 100 is terminal. read (WhatsApp) implies delivered, and can arrive first.
CREATE TABLE private.provider_statuses (
  provider       text NOT NULL,
  status         text NOT NULL,
  rank           int NOT NULL,
  message_status text NOT NULL,
  PRIMARY KEY (provider, status)
);
INSERT INTO private.provider_statuses (provider, status, rank, message_status) VALUES
  ('twilio', 'accepted', 10, 'sent'), ('twilio', 'scheduled', 10, 'sent'),
  ('twilio', 'queued', 20, 'sent'), ('twilio', 'sending', 30, 'sent'), ('twilio', 'sent', 40, 'sent'),
  ('twilio', 'delivered', 100, 'delivered'), ('twilio', 'undelivered', 100, 'undelivered'),
  ('twilio', 'failed', 100, 'failed'), ('twilio', 'canceled', 100, 'failed'),
  ('twilio', 'read', 110, 'delivered');
COMMENT ON TABLE private.provider_statuses IS
  'Provider statuses: rank (monotonic order, >= 100 terminal) and the Hermes message status each implies.';

-- Lost receipts: an attempt handed off this long ago without a final receipt is looked
-- up at the provider (app.due_lookups), again every receipt_lookup_every.
INSERT INTO private.settings (key, value) VALUES
  ('receipt_lookup_after', '5 minutes'),
  ('receipt_lookup_every', '10 minutes');

ALTER TABLE app.message_attempts
  ADD COLUMN lookup_count   int NOT NULL DEFAULT 0,
  ADD COLUMN last_lookup_at timestamptz;
-- The lost-receipt lookup finds open hand-offs by their last sign of life.
CREATE INDEX message_attempts_lookup_idx
  ON app.message_attempts (coalesce(last_lookup_at, handed_off_at)) WHERE status = 'handed_off';

ALTER TABLE app.receipts ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.receipts FORCE ROW LEVEL SECURITY;


CREATE POLICY receipts_integrator_select ON app.receipts FOR SELECT TO hermes_integrator
  USING (tenant_id = nullif(current_setting('hermes.tenant_id', true), '')::uuid);
REVOKE ALL ON app.receipts, private.receipt_queue, private.provider_statuses FROM PUBLIC;

-- One item of a batch intake (private.accept_messages): its request, validation and
-- outcome, carried between the set-based steps.
CREATE TYPE private.intake_item AS (
  idx            int,
  key            text,
  hash           bytea,
  to_address     text,
  from_address   text,
  body           text,
  problem_status int,
  problem_code   text,
  problem_detail text,
  problem_hint   text,
  outcome        text,      -- accept | replay | conflict | problem | duplicate (of an earlier item's key)
  message_id     uuid,
  created_at     timestamptz,
  attempt_id     uuid,
  response       jsonb
);

-- Replaced by the set-based app.apply_receipts.
DROP FUNCTION IF EXISTS private.apply_provider_status(uuid, text, text, text);
DROP FUNCTION IF EXISTS private.uuid7_times(uuid[]);
