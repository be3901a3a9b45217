-- Poison isolation: a send job that keeps failing ends, instead of being requeued
-- forever. The maintenance sweep gives an attempt that lost its job (held as failed:
-- its batch's SQL failed, the worker crashed on it...) a new one, and counts it here;
-- at max_job_failures the attempt ends with its reason ('job_failed') and its cascade
-- moves on. Deferrals (quiet hours, the claim lease) enqueue a new job and do not fail
-- one: they are not counted. The same counter limits re-armed step timers.
ALTER TABLE app.message_attempts ADD COLUMN job_failures int NOT NULL DEFAULT 0;
COMMENT ON COLUMN app.message_attempts.job_failures IS
  'Jobs of this attempt (send, or its step timer) that failed and were replaced by the maintenance sweep.';
INSERT INTO private.settings (key, value) VALUES ('max_job_failures', '5');

ALTER TABLE app.message_events DROP CONSTRAINT message_events_event_type_check;
ALTER TABLE app.message_events ADD CONSTRAINT message_events_event_type_check CHECK (event_type IN (
  'accepted', 'claimed', 'reclaimed', 'reclaim_deferred', 'reconciled', 'reconcile_ambiguous',
  'resend', 'handed_off', 'requeued', 'receipt_timeout',
  'send_error', 'retry_scheduled', 'provider_status', 'rejected', 'deferred',
  'fallback', 'step_timeout', 'canceled', 'late_receipt', 'corrected',
  'failover', 'released',
  'gave_up',          -- its jobs failed max_job_failures times: the attempt ended
  'timer_rearmed'));  -- a step timer whose job failed got a new one

-- A receipt whose application fails (a bug one row triggers) must not stop every
-- tenant's receipts behind it: app.isolate_receipts applies the inbox's head one
-- receipt at a time and moves a failing one here, out of the inbox, with its error.
-- An operator re-queues it (INSERT INTO private.receipt_queue ...) once fixed.
CREATE TABLE private.receipt_quarantine (
  tenant_id          uuid NOT NULL,
  receipt_id         bigint NOT NULL,
  message_created_at timestamptz NOT NULL,
  sqlstate           text NOT NULL,
  error              text NOT NULL,
  quarantined_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, receipt_id)
);
COMMENT ON TABLE private.receipt_quarantine IS
  'Receipts whose application failed, set aside by app.isolate_receipts so that the inbox behind them moves on.';
-- Operator-only (no client role reads private.*); the receipt's tenant leads its key.
REVOKE ALL ON private.receipt_quarantine FROM PUBLIC;
