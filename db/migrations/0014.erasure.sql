-- Erasure (GDPR art. 17, CCPA deletion): a tenant's request to forget a person's
-- addresses. Their personal data is removed -- from the message store, the consent and
-- suppression ledgers, the receipt inbox, inbound messages, conversations, replayable
-- idempotency answers -- and each address leaves only a peppered one-way hash on an
-- 'erasure' suppression tombstone, so that the erased person is never messaged again.
--
-- The ledgers stay append-only: private.tg_append_only refuses every UPDATE and DELETE,
-- except an UPDATE made by an erasure (the transaction-local setting hermes.erasing,
-- set by private.erase_addresses) that changes only the columns the trigger names as
-- redactable (its arguments). app.erasures records each erasure, without the address.
-- depends: 0013.inbound

CREATE SEQUENCE app.erasures_id_seq AS bigint;
CREATE TABLE app.erasures (
  id           bigint NOT NULL DEFAULT nextval('app.erasures_id_seq') PRIMARY KEY,
  tenant_id    uuid NOT NULL,
  address_hash bytea NOT NULL,
  api_key_id   uuid,
  requested_at timestamptz NOT NULL DEFAULT now(),
  counts       jsonb NOT NULL DEFAULT '{}'
);
ALTER SEQUENCE app.erasures_id_seq OWNED BY app.erasures.id;
CREATE INDEX erasures_tenant_idx ON app.erasures (tenant_id, requested_at DESC);
COMMENT ON TABLE app.erasures IS
  'Append-only record of erasures: which hash was forgotten, when, by whom, how many rows were redacted.';
CREATE TRIGGER _010_append_only BEFORE UPDATE OR DELETE ON app.erasures
  FOR EACH ROW EXECUTE FUNCTION private.tg_append_only();
CREATE TRIGGER _011_append_only_truncate BEFORE TRUNCATE ON app.erasures
  FOR EACH STATEMENT EXECUTE FUNCTION private.tg_append_only();
ALTER TABLE app.erasures ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.erasures FORCE ROW LEVEL SECURITY;
CREATE POLICY erasures_integrator_select ON app.erasures FOR SELECT TO hermes_integrator
  USING (tenant_id = nullif(current_setting('hermes.tenant_id', true), '')::uuid);
REVOKE ALL ON app.erasures FROM PUBLIC;

-- The ledgers that hold personal data name their redactable columns.
DROP TRIGGER _010_append_only ON app.consent_events;
CREATE TRIGGER _010_append_only BEFORE UPDATE OR DELETE ON app.consent_events
  FOR EACH ROW EXECUTE FUNCTION private.tg_append_only('address', 'evidence');
DROP TRIGGER _010_append_only ON app.suppression_events;
CREATE TRIGGER _010_append_only BEFORE UPDATE OR DELETE ON app.suppression_events
  FOR EACH ROW EXECUTE FUNCTION private.tg_append_only('address', 'reason', 'evidence');
DROP TRIGGER _010_append_only ON app.inbound_messages;
CREATE TRIGGER _010_append_only BEFORE UPDATE OR DELETE ON app.inbound_messages
  FOR EACH ROW EXECUTE FUNCTION private.tg_append_only('from_address', 'body', 'params');
DROP TRIGGER _010_append_only ON app.receipts;
CREATE TRIGGER _010_append_only BEFORE UPDATE OR DELETE ON app.receipts
  FOR EACH ROW EXECUTE FUNCTION private.tg_append_only('payload', 'error_message');

-- Append-only, with the erasure's exception (see above).
CREATE OR REPLACE FUNCTION private.tg_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND TG_NARGS > 0 AND current_setting('hermes.erasing', true) = 'on'
     AND to_jsonb(NEW) - TG_ARGV = to_jsonb(OLD) - TG_ARGV THEN
    RETURN NEW;   -- an erasure redacting only the columns this ledger names
  END IF;
  RAISE EXCEPTION USING
    ERRCODE = 'HM405',
    MESSAGE = format('%I.%I is append-only: %s is not allowed', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP),
    DETAIL = 'append_only',
    HINT = 'Record a new, compensating row instead.';
END
$$;
COMMENT ON FUNCTION private.tg_append_only() IS
  'Trigger function: refuses UPDATE, DELETE and TRUNCATE on ledgers (an erasure may redact the columns named as arguments).';
