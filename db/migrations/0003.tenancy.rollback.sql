DROP TABLE app.audit_log;
DROP FUNCTION private.tg_append_only();
DROP TABLE app.api_keys;
DROP TABLE app.tenants;
DROP TYPE app.environment;
DROP TABLE private.settings;
