-- Erasure that reaches everything (issue 19, finding 4): an erasure finds a person's
-- messages by the address of ANY of their steps (app.message_attempts.to_address, not
-- only the message's current step), so the attempts get an index that leads with the
-- tenant and the address. The message event ledger names the column an erasure may
-- redact (details: provider error texts and reconcile candidates may quote an address
-- or a body); see private.tg_append_only in 0014.erasure.
-- depends: 0021.calling-mark

CREATE INDEX message_attempts_tenant_to_idx ON app.message_attempts (tenant_id, to_address);

DROP TRIGGER _010_append_only ON app.message_events;
CREATE TRIGGER _010_append_only BEFORE UPDATE OR DELETE ON app.message_events
  FOR EACH ROW EXECUTE FUNCTION private.tg_append_only('details');
