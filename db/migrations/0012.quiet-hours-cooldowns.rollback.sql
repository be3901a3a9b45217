DROP VIEW IF EXISTS api.messages, api.message_decisions;
ALTER TYPE private.send_candidate DROP ATTRIBUTE message_id;
DROP TABLE app.recent_contents, app.contact_history, app.vertical_policies, app.tenant_policies,
           private.quiet_hour_rules;
ALTER TABLE app.messages DROP COLUMN scheduled_at;
ALTER TABLE app.messages DROP CONSTRAINT messages_status_check;
ALTER TABLE app.messages ADD CONSTRAINT messages_status_check CHECK (status IN (
  'queued', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'rejected', 'unknown'));
DELETE FROM private.settings WHERE key = 'quiet_hour_rules';
