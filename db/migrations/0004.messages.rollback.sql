-- CASCADE: the repeatable functions and views built on these go too; forget that
-- they were applied, so the next migrate re-creates them.
DROP TABLE app.idempotency_keys CASCADE;
DROP TABLE app.message_events CASCADE;
DROP TABLE app.message_attempts CASCADE;
DROP TABLE app.messages CASCADE;
DELETE FROM private.repeatable_applied;
