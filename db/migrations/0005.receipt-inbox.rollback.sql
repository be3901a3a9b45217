DROP INDEX app.message_attempts_lookup_idx;
ALTER TABLE app.message_attempts DROP COLUMN lookup_count, DROP COLUMN last_lookup_at;
DELETE FROM private.settings WHERE key IN ('receipt_lookup_after', 'receipt_lookup_every');
DROP TYPE private.intake_item CASCADE;
DROP TABLE private.provider_statuses CASCADE;
DROP TABLE private.receipt_queue CASCADE;
DROP TABLE app.receipts CASCADE;
DELETE FROM private.repeatable_applied;
