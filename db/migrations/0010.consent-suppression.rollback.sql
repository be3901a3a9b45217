-- The views over what this migration adds (repeatable: the next migrate recreates them).
DROP VIEW IF EXISTS api.messages, api.message_decisions, api.consent_events, api.consent_state, api.suppressions;
DROP TABLE app.suppressions, app.suppression_events, app.consent_state, app.consent_events CASCADE;
DROP TYPE private.send_candidate CASCADE;
ALTER TYPE private.intake_item DROP ATTRIBUTE channel, DROP ATTRIBUTE vertical, DROP ATTRIBUTE category, DROP ATTRIBUTE reasons;
DROP FUNCTION IF EXISTS private.tg_consent_state() CASCADE;
DROP FUNCTION IF EXISTS private.tg_suppressions() CASCADE;
ALTER TABLE app.message_events DROP CONSTRAINT message_events_event_type_check;
ALTER TABLE app.message_events ADD CONSTRAINT message_events_event_type_check CHECK (event_type IN (
  'accepted', 'claimed', 'reclaimed', 'reclaim_deferred', 'reconciled', 'reconcile_ambiguous',
  'resend', 'handed_off', 'requeued', 'receipt_timeout',
  'send_error', 'retry_scheduled', 'provider_status', 'rejected'));
ALTER TABLE app.messages DROP COLUMN vertical, DROP COLUMN category, DROP COLUMN reasons;
ALTER TABLE app.api_keys DROP CONSTRAINT api_keys_scopes_check;
ALTER TABLE app.api_keys ADD CONSTRAINT api_keys_scopes_check CHECK (
  cardinality(scopes) > 0 AND scopes <@ ARRAY['admin', 'messages:write', 'keys:write', 'read']);
ALTER TABLE app.tenants DROP COLUMN default_country;
DELETE FROM private.settings WHERE key = 'address_pepper';
