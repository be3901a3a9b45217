-- api.inbound_messages: what recipients wrote to your numbers, with the keyword found
-- and what it did (an opt-out / opt-in consent event, a reply).
CREATE OR REPLACE VIEW api.inbound_messages WITH (security_invoker = true) AS
SELECT i.id,
       i.received_at,
       i.provider,
       i.provider_message_id,
       i.from_address AS "from",
       i.to_address AS "to",
       i.body,
       i.keyword,
       i.action,
       i.consent_event_id,
       i.reply_message_id
  FROM app.inbound_messages i;
COMMENT ON VIEW api.inbound_messages IS
  'Inbound messages to your numbers; keyword STOP/START/HELP... and action opt_out/opt_in/help.';
REVOKE ALL ON api.inbound_messages FROM PUBLIC;
GRANT SELECT ON api.inbound_messages TO hermes_integrator, hermes_anon;

-- api.conversations: one per (contact, your number).
CREATE OR REPLACE VIEW api.conversations WITH (security_invoker = true) AS
SELECT c.contact_address AS contact,
       c.sender_address AS sender,
       c.created_at,
       c.last_inbound_at,
       c.inbound_count
  FROM app.conversations c;
COMMENT ON VIEW api.conversations IS 'Your conversations: a contact and the number of yours they write to.';
REVOKE ALL ON api.conversations FROM PUBLIC;
GRANT SELECT ON api.conversations TO hermes_integrator, hermes_anon;
