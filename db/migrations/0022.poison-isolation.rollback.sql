DROP FUNCTION IF EXISTS app.isolate_receipts(int);
DROP TABLE private.receipt_quarantine;
-- Back to unlimited requeues. The functions reading the column are applied again (in
-- their older form) by the next migrate.
ALTER TABLE app.message_attempts DROP COLUMN job_failures;
DELETE FROM private.settings WHERE key = 'max_job_failures';
ALTER TABLE app.message_events DROP CONSTRAINT message_events_event_type_check;
ALTER TABLE app.message_events ADD CONSTRAINT message_events_event_type_check CHECK (event_type IN (
  'accepted', 'claimed', 'reclaimed', 'reclaim_deferred', 'reconciled', 'reconcile_ambiguous',
  'resend', 'handed_off', 'requeued', 'receipt_timeout',
  'send_error', 'retry_scheduled', 'provider_status', 'rejected', 'deferred',
  'fallback', 'step_timeout', 'canceled', 'late_receipt', 'corrected',
  'failover', 'released')) NOT VALID;  -- 'gave_up' and 'timer_rearmed' events stay (append-only)
DELETE FROM private.repeatable_applied;
