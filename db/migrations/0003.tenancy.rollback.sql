-- CASCADE: the repeatable functions and views built on these go too; forget that
-- they were applied, so the next migrate re-creates them.
DROP TABLE app.audit_log CASCADE;
DROP FUNCTION private.tg_append_only() CASCADE;
DROP TABLE app.api_keys CASCADE;
DROP TABLE app.tenants CASCADE;
DROP TYPE app.environment CASCADE;
DROP TABLE private.settings CASCADE;
DELETE FROM private.repeatable_applied;
