-- The read API is bounded (issue: hardening the command path, item 3).
--
-- PostgREST applies the settings of the role it impersonates to each request's
-- transaction ("impersonated role settings", PostgREST >= 11.1: ALTER ROLE ... SET,
-- read from pg_roles.rolconfig, i.e. cluster-wide, not IN DATABASE). So an
-- integrator's query is cut off after statement_timeout with SQLSTATE 57014 instead of
-- holding a connection and a CPU, and sorts and hashes stay within work_mem.
-- Indexes that lead with tenant_id serve the read API's common filters and orders
-- under row-level security (every policy is tenant_id = the key's tenant): without
-- them an unfiltered ?order= on message_events scanned every tenant's events.
-- depends: 0006.command-auth

ALTER ROLE hermes_integrator SET statement_timeout = '5s';
ALTER ROLE hermes_integrator SET work_mem = 8192;  -- kB: PostgREST lowercases values, and '8mb' is not a unit
ALTER ROLE hermes_integrator SET idle_in_transaction_session_timeout = '10s';
ALTER ROLE hermes_anon SET statement_timeout = '1s';
ALTER ROLE hermes_anon SET work_mem = 1024;

-- api.message_events: ?order=created_at.desc / id, per tenant; and per message.
CREATE INDEX message_events_tenant_created_idx ON app.message_events (tenant_id, created_at DESC, id DESC);
CREATE INDEX message_events_tenant_message_idx ON app.message_events (tenant_id, message_id, id);
-- api.messages: by status (the open ones, the failed ones) and by recipient, newest first
-- (messages_tenant_created_idx already serves the unfiltered order).
CREATE INDEX messages_tenant_status_created_idx ON app.messages (tenant_id, status, created_at DESC);
CREATE INDEX messages_tenant_to_created_idx ON app.messages (tenant_id, to_address, created_at DESC);
