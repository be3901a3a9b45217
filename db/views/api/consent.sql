-- api.consent_events: your consent ledger (append-only), newest first with
-- ?order=recorded_at.desc. Global (operator) events are not shown; a refusal because
-- of one still names it in the message's reasons.
CREATE OR REPLACE VIEW api.consent_events WITH (security_invoker = true) AS
SELECT e.id,
       e.address,
       e.kind,
       e.channel,
       e.scope,
       CASE WHEN e.scope = 'vertical' THEN e.scope_ref END AS vertical,
       CASE WHEN e.scope = 'sender' THEN e.scope_ref END AS sender,
       e.source,
       e.evidence,
       e.occurred_at,
       e.recorded_at
  FROM app.consent_events e;
COMMENT ON VIEW api.consent_events IS
  'Your consent ledger: opt_in / opt_out per address, channel (or all) and scope (tenant, vertical, sender).';
REVOKE ALL ON api.consent_events FROM PUBLIC;
GRANT SELECT ON api.consent_events TO hermes_integrator, hermes_anon;

-- api.consent_state: per address, channel and scope, the latest recorded opt-out and
-- opt-in (with the occurred_at each claimed) and what they leave in force for that cell. Whether a given message may go combines
-- every applicable cell (its channel and all; tenant, its vertical, its sender; and
-- global): see the reasons of the message, or api.message_decisions.
CREATE OR REPLACE VIEW api.consent_state WITH (security_invoker = true) AS
SELECT s.address,
       s.channel,
       s.scope,
       CASE WHEN s.scope = 'vertical' THEN s.scope_ref END AS vertical,
       CASE WHEN s.scope = 'sender' THEN s.scope_ref END AS sender,
       -- Whichever Hermes recorded last (the higher ledger id), not the later occurred_at.
       CASE WHEN s.last_opt_out_id IS NOT NULL
                 AND (s.last_opt_in_id IS NULL OR s.last_opt_in_id < s.last_opt_out_id)
            THEN 'opted_out' ELSE 'opted_in' END AS status,
       s.last_opt_out_at,
       s.last_opt_in_at,
       s.updated_at
  FROM app.consent_state s;
COMMENT ON VIEW api.consent_state IS
  'Current consent per (address, channel, scope): opted_out or opted_in, from the latest events.';
REVOKE ALL ON api.consent_state FROM PUBLIC;
GRANT SELECT ON api.consent_state TO hermes_integrator, hermes_anon;
