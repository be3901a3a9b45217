-- Back to senders checked for their shape only. The functions that read the registry
-- are dropped here; the next migrate applies the repeatable files again (in their
-- older form).
DROP VIEW IF EXISTS api.senders;
DROP FUNCTION IF EXISTS app.register_sender(text, jsonb), app.update_sender(text, uuid, jsonb),
  app.list_senders(text, jsonb), private.register_sender(uuid, jsonb), private.update_sender(uuid, uuid, jsonb),
  private.sender_json(app.senders), private.check_sender(app.senders),
  private.senders_allowed(private.send_candidate[]), private.sender_address(text, text),
  private.inbound_tenant(text, text, uuid);
DROP TABLE app.senders;
REVOKE SELECT (id, environment) ON app.tenants FROM hermes_integrator;
DELETE FROM private.repeatable_applied;
