-- Back to one SMS per message. Functions written for the cascade read the columns and
-- the intake attribute dropped here: the repeatable functions are re-applied by the
-- version they belong to. A database holding messages of other channels or states
-- cannot go back: the constraints restored below refuse them.
DROP VIEW IF EXISTS api.message_attempts;
DROP FUNCTION IF EXISTS private.settle_attempts(uuid[]), app.expire_steps(uuid[]), private.reconcile_window(),
  private.validate_step(jsonb, int, jsonb, boolean), private.validate_message(jsonb, text, boolean, jsonb),
  app.create_tenant(text, text, text, text, text, text), private.create_tenant(uuid, text, text, text, text, text);
ALTER TYPE private.intake_item DROP ATTRIBUTE steps, DROP ATTRIBUTE contact_id;
ALTER TABLE app.tenant_policies DROP COLUMN cascade_channels, DROP COLUMN step_timeouts;
ALTER TABLE app.tenants DROP COLUMN default_email_from, DROP COLUMN default_whatsapp_from;
DROP TABLE private.providers;
DELETE FROM private.provider_statuses WHERE provider IN ('ses', 'fcm', 'whatsapp', 'vonage');

ALTER TABLE app.message_events DROP CONSTRAINT message_events_event_type_check;
ALTER TABLE app.message_events ADD CONSTRAINT message_events_event_type_check CHECK (event_type IN (
  'accepted', 'claimed', 'reclaimed', 'reclaim_deferred', 'reconciled', 'reconcile_ambiguous',
  'resend', 'handed_off', 'requeued', 'receipt_timeout',
  'send_error', 'retry_scheduled', 'provider_status', 'rejected', 'deferred'));

ALTER TABLE app.message_attempts DROP CONSTRAINT message_attempts_channel_check;
ALTER TABLE app.message_attempts DROP CONSTRAINT message_attempts_status_check;
ALTER TABLE app.message_attempts ADD CONSTRAINT message_attempts_status_check CHECK (status IN (
  'pending', 'claimed', 'handed_off', 'delivered', 'undelivered', 'failed', 'rejected', 'unknown'));
ALTER TABLE app.message_attempts
  DROP COLUMN to_address, DROP COLUMN from_address, DROP COLUMN content, DROP COLUMN step_timeout,
  DROP COLUMN timer_job_id, DROP COLUMN reasons, DROP COLUMN completed_at;

ALTER TABLE app.messages DROP CONSTRAINT messages_current_step_check;
ALTER TABLE app.messages ALTER COLUMN to_address SET NOT NULL, ALTER COLUMN from_address SET NOT NULL;
ALTER TABLE app.messages DROP COLUMN steps, DROP COLUMN current_step, DROP COLUMN contact_id;
ALTER TABLE app.messages DROP CONSTRAINT messages_channel_check;
ALTER TABLE app.messages ADD CONSTRAINT messages_channel_check CHECK (channel IN ('sms'));
DELETE FROM private.settings WHERE key = 'reconcile_window';
REVOKE SELECT ON app.message_attempts FROM hermes_integrator, hermes_anon;
-- Every repeatable file is applied again by the next migrate.
DELETE FROM private.repeatable_applied;
