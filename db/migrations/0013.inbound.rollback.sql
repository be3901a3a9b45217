DROP VIEW IF EXISTS api.inbound_messages, api.conversations, api.messages, api.message_decisions;
ALTER TABLE app.tenant_policies DROP COLUMN opt_out_reply, DROP COLUMN opt_in_reply, DROP COLUMN help_reply;
DROP TABLE app.inbound_dedup, app.inbound_messages, app.conversations;
ALTER TABLE app.messages DROP CONSTRAINT messages_category_check;
ALTER TABLE app.messages ADD CONSTRAINT messages_category_check CHECK (category IN ('marketing', 'transactional'));
