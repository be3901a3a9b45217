DROP INDEX app.messages_tenant_to_created_idx;
DROP INDEX app.messages_tenant_status_created_idx;
DROP INDEX app.message_events_tenant_message_idx;
DROP INDEX app.message_events_tenant_created_idx;
ALTER ROLE hermes_anon RESET work_mem;
ALTER ROLE hermes_anon RESET statement_timeout;
ALTER ROLE hermes_integrator RESET idle_in_transaction_session_timeout;
ALTER ROLE hermes_integrator RESET work_mem;
ALTER ROLE hermes_integrator RESET statement_timeout;
