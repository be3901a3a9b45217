DROP TABLE app.erasures;
CREATE OR REPLACE FUNCTION private.tg_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING
    ERRCODE = 'HM405',
    MESSAGE = format('%I.%I is append-only: %s is not allowed', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP),
    DETAIL = 'append_only',
    HINT = 'Record a new, compensating row instead.';
END
$$;
COMMENT ON FUNCTION private.tg_append_only() IS 'Trigger function: refuses UPDATE, DELETE and TRUNCATE on ledgers.';
DROP TRIGGER _010_append_only ON app.consent_events;
CREATE TRIGGER _010_append_only BEFORE UPDATE OR DELETE ON app.consent_events
  FOR EACH ROW EXECUTE FUNCTION private.tg_append_only();
DROP TRIGGER _010_append_only ON app.suppression_events;
CREATE TRIGGER _010_append_only BEFORE UPDATE OR DELETE ON app.suppression_events
  FOR EACH ROW EXECUTE FUNCTION private.tg_append_only();
DROP TRIGGER _010_append_only ON app.inbound_messages;
CREATE TRIGGER _010_append_only BEFORE UPDATE OR DELETE ON app.inbound_messages
  FOR EACH ROW EXECUTE FUNCTION private.tg_append_only();
DROP TRIGGER _010_append_only ON app.receipts;
CREATE TRIGGER _010_append_only BEFORE UPDATE OR DELETE ON app.receipts
  FOR EACH ROW EXECUTE FUNCTION private.tg_append_only();
