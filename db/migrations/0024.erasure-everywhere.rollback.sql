DROP TRIGGER _010_append_only ON app.message_events;
CREATE TRIGGER _010_append_only BEFORE UPDATE OR DELETE ON app.message_events
  FOR EACH ROW EXECUTE FUNCTION private.tg_append_only();
DROP INDEX app.message_attempts_tenant_to_idx;
