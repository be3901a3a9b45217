DROP SCHEMA pgqueuer CASCADE;
DELETE FROM private.repeatable_applied;
