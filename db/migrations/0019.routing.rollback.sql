-- Back to one provider per channel. The policy functions read the column: every
-- repeatable file is applied again by the next migrate.
DROP FUNCTION IF EXISTS private.set_tenant_policy(uuid, uuid, jsonb), private.tenant_policy_json(uuid);
ALTER TABLE app.tenant_policies DROP COLUMN channel_providers;
ALTER TABLE app.message_events DROP CONSTRAINT message_events_event_type_check;
ALTER TABLE app.message_events ADD CONSTRAINT message_events_event_type_check CHECK (event_type IN (
  'accepted', 'claimed', 'reclaimed', 'reclaim_deferred', 'reconciled', 'reconcile_ambiguous',
  'resend', 'handed_off', 'requeued', 'receipt_timeout',
  'send_error', 'retry_scheduled', 'provider_status', 'rejected', 'deferred',
  'fallback', 'step_timeout', 'canceled', 'late_receipt', 'corrected'));
DELETE FROM private.repeatable_applied;
