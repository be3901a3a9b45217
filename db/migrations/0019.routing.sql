-- Routing: per tenant and channel, the ordered providers a step is sent through. The
-- first is tried; after answered errors (the provider did not take the message) the
-- step fails over to the next (app.record_send_error, event 'failover'). Empty: the
-- channel's default provider (private.providers.is_default).
ALTER TABLE app.tenant_policies
  ADD COLUMN channel_providers jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(channel_providers) = 'object');
COMMENT ON COLUMN app.tenant_policies.channel_providers IS
  'Per channel, the providers in the order they are tried, e.g. {"sms": ["twilio", "vonage"]}; none: the channel''s default.';

ALTER TABLE app.message_events DROP CONSTRAINT message_events_event_type_check;
ALTER TABLE app.message_events ADD CONSTRAINT message_events_event_type_check CHECK (event_type IN (
  'accepted', 'claimed', 'reclaimed', 'reclaim_deferred', 'reconciled', 'reconcile_ambiguous',
  'resend', 'handed_off', 'requeued', 'receipt_timeout',
  'send_error', 'retry_scheduled', 'provider_status', 'rejected', 'deferred',
  'fallback', 'step_timeout', 'canceled', 'late_receipt', 'corrected',
  'failover'));   -- a step moved to the tenant's next provider for its channel
