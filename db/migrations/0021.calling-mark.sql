-- The calling mark: a worker records that it is about to call the provider for a batch
-- of claimed attempts (app.begin_calls) before it calls. A claimed attempt whose claim
-- never got that far (the worker died between its claim and the mark) cannot be at the
-- provider: after the claim lease it is released and sent, instead of being reconciled
-- -- at a provider that cannot be asked, that meant 'unknown' and never sent.
ALTER TABLE app.message_attempts ADD COLUMN calling_claim_no int;
COMMENT ON COLUMN app.message_attempts.calling_claim_no IS
  'The claim whose worker began the provider call, while that call''s outcome is open; NULL: no call may be outstanding.';
-- Attempts claimed before the mark existed may be mid-call: they keep reconciling.
-- (Stop the workers of older versions before this migration: their claims are never marked.)
UPDATE app.message_attempts SET calling_claim_no = claim_count WHERE status = 'claimed';

ALTER TABLE app.message_events DROP CONSTRAINT message_events_event_type_check;
ALTER TABLE app.message_events ADD CONSTRAINT message_events_event_type_check CHECK (event_type IN (
  'accepted', 'claimed', 'reclaimed', 'reclaim_deferred', 'reconciled', 'reconcile_ambiguous',
  'resend', 'handed_off', 'requeued', 'receipt_timeout',
  'send_error', 'retry_scheduled', 'provider_status', 'rejected', 'deferred',
  'fallback', 'step_timeout', 'canceled', 'late_receipt', 'corrected',
  'failover',
  'released'));   -- a claim that never began its provider call was let go: sent by the next
