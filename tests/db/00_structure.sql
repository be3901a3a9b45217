-- Structure and security invariants of the schema. The checks over views, tables,
-- functions and roles are generic (they query the catalogs), so a new object that
-- breaks an invariant fails here without this file being edited.
BEGIN;
\ir helpers.psql
SELECT plan(47);

-- Schemas ----------------------------------------------------------------------
SELECT has_schema('app', 'schema app exists');
SELECT has_schema('private', 'schema private exists');
SELECT has_schema('api', 'schema api exists');
SELECT has_schema('pgqueuer', 'schema pgqueuer exists');

-- Tables: the parents by name, plus whatever monthly partitions exist.
SELECT tables_are('app',
  ARRAY['tenants', 'api_keys', 'audit_log', 'messages', 'message_attempts', 'message_events',
        'idempotency_keys', 'receipts', 'consent_events', 'consent_state', 'suppression_events',
        'suppressions', 'tenant_policies', 'vertical_policies', 'contact_history', 'recent_contents',
        'conversations', 'inbound_messages', 'inbound_dedup', 'erasures',
        -- the identity graph and its imports
        'imports', 'file_rows', 'import_extractions', 'import_errors', 'properties', 'identities',
        'phone_numbers', 'email_addresses', 'identity_phones', 'identity_emails',
        'identity_properties', 'verticals', 'leads', 'external_refs',
        -- tenants' own provider accounts (sealed credentials)
        'provider_accounts',
        -- the sender registry (global: a number has one owner)
        'senders']::name[]
  || ARRAY(SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'app' AND c.relispartition AND c.relkind IN ('r', 'p')),
  'schema app has exactly the Hermes tables (and their partitions)');
SELECT is(
  ARRAY(SELECT c.relname::text FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'app' AND p.partstrat = 'r' ORDER BY 1),
  ARRAY['audit_log', 'consent_events', 'inbound_messages', 'message_attempts', 'message_events', 'messages',
        'receipts', 'suppression_events'],
  'the ledgers and the message store are range-partitioned');
SELECT is_empty($$
  SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = 'app' AND c.relispartition AND c.relkind IN ('r', 'p')
     AND c.relname !~ '^(audit_log|consent_events|inbound_messages|message_attempts|message_events|messages|receipts|suppression_events)_p[0-9]{4}_[0-9]{2}$'
$$, 'every partition is named <table>_pYYYY_MM');
SELECT views_are('api', ARRAY['messages', 'message_events', 'message_attempts', 'message_decisions', 'consent_events', 'consent_state',
                              'suppressions', 'inbound_messages', 'conversations', 'imports', 'import_errors',
                              'provider_accounts', 'senders'],
                 'schema api has the read views');

-- Views: security_invoker everywhere in api ------------------------------------
SELECT isnt_empty($$
  SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = 'api' AND c.relkind IN ('v', 'm')
$$, 'schema api has views (the next check is not vacuous)');
SELECT is_empty($$
  SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = 'api' AND c.relkind IN ('v', 'm')
     AND NOT EXISTS (SELECT 1 FROM pg_options_to_table(c.reloptions) o
                      WHERE o.option_name = 'security_invoker' AND o.option_value::boolean)
$$, 'every relation in api is a view with security_invoker = true (RLS of the caller applies)');
SELECT is_empty($$
  SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = 'api' AND c.relkind NOT IN ('v')
$$, 'schema api holds views only (no tables, matviews, sequences)');

-- Row-level security: enabled and forced on every table of app ------------------
SELECT is_empty($$
  SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = 'app' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
     AND NOT (c.relrowsecurity AND c.relforcerowsecurity)
$$, 'every app table has row-level security enabled and forced');
SELECT is_empty($$
  SELECT schemaname, tablename, policyname FROM pg_policies
   WHERE schemaname IN ('app', 'private', 'api')
     AND (cmd <> 'SELECT' OR roles <> '{hermes_integrator}'::name[] OR permissive <> 'PERMISSIVE')
$$, 'every policy is a permissive SELECT policy for hermes_integrator only (no write policies)');
SELECT is_empty($$
  SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = 'app' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
     AND NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid
                      AND pg_get_expr(p.polqual, p.polrelid) LIKE '%current_setting(''hermes.tenant_id''%')
$$, 'every app table has a policy keyed on hermes.tenant_id');
-- Partitions have no RLS of their own: nobody but the owner may touch them directly.
SELECT is_empty($$
  SELECT c.relname, a.grantee::regrole, a.privilege_type
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
         aclexplode(c.relacl) a
   WHERE n.nspname = 'app' AND c.relispartition AND a.grantee <> c.relowner
$$, 'no role but the owner has privileges on a partition');

-- Functions ----------------------------------------------------------------------
-- The lists are closed so that a new function also needs a test file under
-- tests/db/functions/ (one per file of db/functions).
SELECT functions_are('app', ARRAY[
  'apply_receipts', 'isolate_receipts', 'check_worker_settings', 'claim_attempt', 'claim_attempts', 'create_admin_key', 'create_api_key',
  'create_tenant', 'due_lookups', 'get_message', 'list_api_keys', 'reconcile_attempt', 'record_handoff',
  'record_handoffs', 'record_lookups', 'record_receipt', 'record_receipts', 'record_send_error',
  'record_consent', 'record_suppressions', 'tenant_defaults', 'get_tenant_policy', 'set_tenant_policy',
  'record_inbound', 'erase_addresses', 'submit_gathered',
  'revoke_api_key', 'rotate_api_key', 'run_maintenance', 'submit_message', 'submit_messages',
  'begin_import', 'finish_landing', 'get_import', 'reparse_import', 'import_parse_plan',
  'import_file_rows', 'begin_extractions', 'record_extractions', 'run_import_merge', 'record_import_failure',
  'expire_steps', 'set_provider_account', 'disable_provider_account', 'provider_account_credentials',
  'attempt_provider_account', 'begin_calls', 'record_whatsapp_inbound',
  'register_sender', 'update_sender', 'list_senders',
  'provider_account_webhook_secrets', 'fill_webhook_secrets', 'inbound_provider_account'],
  'schema app has exactly the command functions');
SELECT functions_are('private', ARRAY[
  'api_key_json', 'audit', 'base64url', 'check_request', 'enqueue_job',
  'ensure_partitions', 'hmac_sha256', 'lock_attempt', 'log_event', 'message_json', 'message_status_rank', 'mint_api_key',
  'normalize_phone', 'raise_problem', 'sign_jwt', 'postgrest_pre_config', 'tg_append_only',
  'configure_database', 'provider_error_is_permanent', 'provider_error_suppression', 'accept_messages', 'enqueue_jobs',
  'insert_receipts', 'lock_attempts', 'record_handoffs_locked', 'validate_message', 'active_tenant',
  'uuid7', 'uuid7_time', 'api_key_scopes', 'authorize', 'check_api_key', 'create_tenant',
  'refuse_scope_escalation', 'submit_message', 'submit_messages', 'assign_owner', 'claim_lease', 'reconcile_delay',
  'address_key', 'address_hash', 'lock_addresses', 'tg_consent_state', 'consent_state_from_ledger',
  'rebuild_consent_state', 'tg_suppressions', 'suppressions_from_ledger', 'rebuild_suppressions',
  'validate_consent', 'record_consents', 'consent_event_json', 'record_suppressions', 'send_eligibility',
  'check_send_eligibility', 'provider_error_is_opt_out', 'tenant_policy_json', 'set_tenant_policy',
  'detect_keyword', 'erase_addresses', 'rules_in_force',
  'property_hash', 'identity_hash', 'merge_import',
  'import_json', 'import_chunk_rows', 'enqueue_parse_jobs', 'import_stage', 'requeue_imports',
  'record_import_rejections', 'merge_suppression_import', 'merge_contact_history_import',
  'erase_from_graph', 'erasure_attempts', 'import_part_end', 'finish_import_part', 'holds_erased',
  'reconcile_window', 'settle_attempts', 'validate_step',
  'sender_address', 'senders_allowed', 'sender_json', 'check_sender', 'register_sender', 'update_sender',
  'inbound_tenant'],
  'schema private has exactly the helper functions');
SELECT is_empty($$
  SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
   WHERE n.nspname = 'api'
$$, 'schema api has no functions (PostgREST would expose them as /rpc)');
SELECT is_empty($$
  SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
   WHERE n.nspname IN ('app', 'private', 'api')
     AND (p.proacl IS NULL  -- default ACL: EXECUTE for PUBLIC
          OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a
                      WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'))
$$, 'no function in app, private or api is executable by PUBLIC');
SELECT is_empty($$
  SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
   WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')
     AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) s WHERE s LIKE 'search_path=%')
$$, 'every SECURITY DEFINER function sets its search_path');
SELECT is_empty($$
  SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
   WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')
     AND EXISTS (SELECT 1 FROM unnest(p.proconfig) s
                  WHERE s LIKE 'search_path=%' AND s ~ '(=|,\s*)"?(public|\$user)"?(,|$)')
$$, 'no SECURITY DEFINER function searches public or $user');
-- The tables FORCE row-level security and have no policy for their owner: the
-- command functions only work when their owner bypasses RLS.
SELECT is_empty($$
  SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    JOIN pg_roles r ON r.oid = p.proowner
   WHERE p.prosecdef AND n.nspname IN ('app', 'private', 'api')
     AND NOT (r.rolsuper OR r.rolbypassrls)
$$, 'the owner of every SECURITY DEFINER function bypasses row-level security');
-- Who may execute what: the whole map of EXECUTE grants to Hermes roles.
SELECT set_eq($$
  SELECT a.grantee::regrole::text, p.oid::regprocedure::text
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace, aclexplode(p.proacl) a
   WHERE n.nspname IN ('app', 'private', 'api') AND a.privilege_type = 'EXECUTE'
     AND a.grantee::regrole::text LIKE 'hermes\_%' AND a.grantee <> p.proowner
$$, $$ VALUES
  ('hermes_api', 'app.create_tenant(text,text,text,text,text,text)'),
  ('hermes_api', 'app.create_api_key(text,text,text[],timestamp with time zone)'),
  ('hermes_api', 'app.list_api_keys(text)'),
  ('hermes_api', 'app.rotate_api_key(text,uuid,interval)'),
  ('hermes_api', 'app.revoke_api_key(text,uuid)'),
  ('hermes_api', 'app.get_message(text,uuid)'),
  ('hermes_api', 'app.submit_message(text,jsonb,text)'),
  ('hermes_api', 'app.submit_messages(text,jsonb)'),
  ('hermes_api', 'app.record_consent(text,jsonb)'),
  ('hermes_api', 'app.tenant_defaults(text,text)'),
  ('hermes_api', 'app.get_tenant_policy(text)'),
  ('hermes_api', 'app.set_tenant_policy(text,jsonb)'),
  ('hermes_api', 'app.record_inbound(text,uuid,text,text,text,text,jsonb)'),
  ('hermes_api', 'app.erase_addresses(text,jsonb)'),
  ('hermes_api', 'app.submit_gathered(text,jsonb)'),
  ('hermes_api', 'app.record_suppressions(text,text,text,jsonb,text)'),
  ('hermes_api', 'app.record_receipt(text,uuid,text,text,text,text,jsonb)'),
  ('hermes_api', 'app.record_receipts(jsonb)'),
  ('hermes_api', 'app.record_whatsapp_inbound(jsonb)'),
  ('hermes_api', 'app.set_provider_account(text,uuid,text,text,bytea,text,bytea,text)'),
  ('hermes_api', 'app.disable_provider_account(text,uuid)'),
  ('hermes_api', 'app.provider_account_webhook_secrets(uuid[])'),
  ('hermes_api', 'app.inbound_provider_account(text,uuid,text)'),
  ('hermes_api', 'app.attempt_provider_account(uuid)'),
  ('hermes_api', 'app.register_sender(text,jsonb)'),
  ('hermes_api', 'app.update_sender(text,uuid,jsonb)'),
  ('hermes_api', 'app.list_senders(text,jsonb)'),
  ('hermes_worker', 'app.provider_account_credentials(uuid[])'),
  ('hermes_worker', 'app.fill_webhook_secrets(jsonb)'),
  ('hermes_worker', 'app.claim_attempt(uuid)'),
  ('hermes_worker', 'app.claim_attempts(uuid[])'),
  ('hermes_worker', 'app.begin_calls(uuid[],integer[])'),
  ('hermes_worker', 'app.apply_receipts(integer)'),
  ('hermes_worker', 'app.isolate_receipts(integer)'),
  ('hermes_worker', 'app.record_handoffs(jsonb)'),
  ('hermes_worker', 'app.due_lookups(integer)'),
  ('hermes_worker', 'app.record_lookups(jsonb)'),
  ('hermes_worker', 'app.reconcile_attempt(uuid,integer,jsonb)'),
  ('hermes_worker', 'app.record_handoff(uuid,text,text)'),
  ('hermes_worker', 'app.record_send_error(uuid,integer,text,text,integer,interval,boolean)'),
  ('hermes_worker', 'app.record_import_failure(bigint,text,text)'),
  ('hermes_worker', 'app.expire_steps(uuid[])'),
  ('hermes_worker', 'app.run_maintenance()'),
  ('hermes_worker', 'app.check_worker_settings(interval)'),
  ('hermes_api', 'app.begin_import(text,jsonb)'),
  ('hermes_api', 'app.finish_landing(text,bigint,bigint)'),
  ('hermes_api', 'app.get_import(text,bigint)'),
  ('hermes_api', 'app.reparse_import(text,bigint,text)'),
  ('hermes_worker', 'app.import_parse_plan(bigint,bigint,bigint)'),
  ('hermes_worker', 'app.import_file_rows(bigint,bigint,bigint)'),
  ('hermes_worker', 'app.begin_extractions()'),
  ('hermes_worker', 'app.record_extractions(bigint,text)'),
  ('hermes_worker', 'app.run_import_merge(bigint)'),
  ('hermes_integrator', 'private.check_request()'),
  ('hermes_anon', 'private.check_request()'),
  ('hermes_authenticator', 'private.postgrest_pre_config()')
$$, 'EXECUTE grants to Hermes roles are exactly the documented ones');
SELECT ok(NOT has_function_privilege('hermes_api', 'app.create_admin_key(text)', 'EXECUTE')
          AND NOT has_function_privilege('hermes_worker', 'app.create_admin_key(text)', 'EXECUTE'),
          'app.create_admin_key is executable by no client role');

-- The owner: every object of app, private, api and pgqueuer belongs to hermes_owner, a
-- role that is no superuser and cannot log in, but bypasses row-level security.
SELECT ok((SELECT NOT rolsuper AND NOT rolcanlogin AND rolbypassrls AND NOT rolcreaterole
                  AND NOT rolcreatedb AND NOT rolreplication
             FROM pg_roles WHERE rolname = 'hermes_owner'),
  'hermes_owner: NOSUPERUSER NOLOGIN BYPASSRLS, nothing else');
SELECT is_empty($$
  SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
   WHERE n.nspname IN ('app', 'private', 'api', 'pgqueuer') AND p.proowner <> 'hermes_owner'::regrole
$$, 'every function is owned by hermes_owner (so SECURITY DEFINER runs as no superuser)');
SELECT is_empty($$
  SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname IN ('app', 'private', 'api', 'pgqueuer') AND c.relkind IN ('r', 'p', 'v', 'S')
     AND c.relowner <> 'hermes_owner'::regrole
$$, 'every table, partition, view and sequence is owned by hermes_owner');
SELECT is_empty($$
  SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    JOIN pg_roles r ON r.oid = p.proowner
   WHERE p.prosecdef AND r.rolsuper
$$, 'no SECURITY DEFINER function runs as a superuser');

-- Roles ----------------------------------------------------------------------------
SELECT ok((SELECT NOT rolinherit FROM pg_roles WHERE rolname = 'hermes_authenticator'),
          'hermes_authenticator is NOINHERIT');
SELECT is_empty($$
  SELECT rolname FROM pg_roles
   WHERE rolname IN ('hermes_api', 'hermes_worker', 'hermes_authenticator',
                     'hermes_integrator', 'hermes_anon')
     AND (rolsuper OR rolbypassrls OR rolcreaterole OR rolcreatedb OR rolreplication)
$$, 'no Hermes role is superuser, BYPASSRLS, CREATEROLE, CREATEDB or REPLICATION');
SELECT is(
  (SELECT count(*)::int FROM pg_roles
    WHERE rolname IN ('hermes_api', 'hermes_worker', 'hermes_authenticator',
                      'hermes_integrator', 'hermes_anon')),
  5, 'the five Hermes roles exist');
SELECT set_eq($$
  SELECT r.rolname::text FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
   WHERE m.member = 'hermes_authenticator'::regrole
$$, ARRAY['hermes_integrator', 'hermes_anon'],
  'hermes_authenticator is a member of exactly hermes_integrator and hermes_anon');
SELECT is_empty($$
  SELECT m.member::regrole, m.roleid::regrole FROM pg_auth_members m
   WHERE m.member::regrole::text IN ('hermes_api', 'hermes_worker', 'hermes_integrator', 'hermes_anon')
$$, 'the other Hermes roles are members of no role');
SELECT ok((SELECT NOT rolcanlogin FROM pg_roles WHERE rolname = 'hermes_integrator')
          AND (SELECT NOT rolcanlogin FROM pg_roles WHERE rolname = 'hermes_anon'),
          'hermes_integrator and hermes_anon cannot log in');

-- Table privileges ----------------------------------------------------------------
SELECT is_empty($$
  SELECT r.rolname, c.oid::regclass
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
         (VALUES ('hermes_api'), ('hermes_worker')) r(rolname)
   WHERE n.nspname IN ('app', 'private', 'api') AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
     AND (has_table_privilege(r.rolname, c.oid,
            'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
          OR has_any_column_privilege(r.rolname, c.oid, 'SELECT, INSERT, UPDATE, REFERENCES'))
$$, 'hermes_api and hermes_worker have no privilege on any table of app, private or api');
SELECT is_empty($$
  SELECT r.rolname, c.oid::regclass
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
         (VALUES ('hermes_api'), ('hermes_worker'), ('hermes_integrator'), ('hermes_anon')) r(rolname)
   WHERE n.nspname IN ('app', 'private', 'api') AND c.relkind = 'S'
     AND has_sequence_privilege(r.rolname, c.oid, 'USAGE, SELECT, UPDATE')
$$, 'no client role may use the sequences of app');
SELECT set_eq($$
  SELECT a.grantee::regrole::text, c.oid::regclass::text, a.privilege_type
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a
   WHERE n.nspname IN ('app', 'private', 'api') AND a.grantee <> c.relowner
$$, $$ VALUES
  ('hermes_integrator', 'app.messages', 'SELECT'), ('hermes_anon', 'app.messages', 'SELECT'),
  ('hermes_integrator', 'app.message_events', 'SELECT'), ('hermes_anon', 'app.message_events', 'SELECT'),
  ('hermes_integrator', 'api.messages', 'SELECT'), ('hermes_anon', 'api.messages', 'SELECT'),
  ('hermes_integrator', 'api.message_events', 'SELECT'), ('hermes_anon', 'api.message_events', 'SELECT'),
  ('hermes_integrator', 'app.message_attempts', 'SELECT'), ('hermes_anon', 'app.message_attempts', 'SELECT'),
  ('hermes_integrator', 'api.message_attempts', 'SELECT'), ('hermes_anon', 'api.message_attempts', 'SELECT'),
  ('hermes_integrator', 'app.consent_events', 'SELECT'), ('hermes_anon', 'app.consent_events', 'SELECT'),
  ('hermes_integrator', 'app.consent_state', 'SELECT'), ('hermes_anon', 'app.consent_state', 'SELECT'),
  ('hermes_integrator', 'app.suppression_events', 'SELECT'), ('hermes_anon', 'app.suppression_events', 'SELECT'),
  ('hermes_integrator', 'app.suppressions', 'SELECT'), ('hermes_anon', 'app.suppressions', 'SELECT'),
  ('hermes_integrator', 'api.consent_events', 'SELECT'), ('hermes_anon', 'api.consent_events', 'SELECT'),
  ('hermes_integrator', 'api.consent_state', 'SELECT'), ('hermes_anon', 'api.consent_state', 'SELECT'),
  ('hermes_integrator', 'api.suppressions', 'SELECT'), ('hermes_anon', 'api.suppressions', 'SELECT'),
  ('hermes_integrator', 'api.message_decisions', 'SELECT'), ('hermes_anon', 'api.message_decisions', 'SELECT'),
  ('hermes_integrator', 'app.conversations', 'SELECT'), ('hermes_anon', 'app.conversations', 'SELECT'),
  ('hermes_integrator', 'app.inbound_messages', 'SELECT'), ('hermes_anon', 'app.inbound_messages', 'SELECT'),
  ('hermes_integrator', 'api.conversations', 'SELECT'), ('hermes_anon', 'api.conversations', 'SELECT'),
  ('hermes_integrator', 'api.inbound_messages', 'SELECT'), ('hermes_anon', 'api.inbound_messages', 'SELECT'),
  ('hermes_integrator', 'app.imports', 'SELECT'), ('hermes_anon', 'app.imports', 'SELECT'),
  ('hermes_integrator', 'app.import_errors', 'SELECT'), ('hermes_anon', 'app.import_errors', 'SELECT'),
  ('hermes_integrator', 'api.imports', 'SELECT'), ('hermes_anon', 'api.imports', 'SELECT'),
  ('hermes_integrator', 'api.import_errors', 'SELECT'), ('hermes_anon', 'api.import_errors', 'SELECT'),
  ('hermes_integrator', 'api.provider_accounts', 'SELECT'), ('hermes_anon', 'api.provider_accounts', 'SELECT'),
  ('hermes_integrator', 'app.senders', 'SELECT'), ('hermes_anon', 'app.senders', 'SELECT'),
  ('hermes_integrator', 'api.senders', 'SELECT'), ('hermes_anon', 'api.senders', 'SELECT')
$$, 'the only table grants are SELECT on the read API''s views and their tables to the PostgREST roles');
SELECT ok(NOT has_schema_privilege('hermes_api', 'private', 'USAGE')
          AND NOT has_schema_privilege('hermes_worker', 'private', 'USAGE')
          AND NOT has_schema_privilege('hermes_api', 'public', 'CREATE'),
          'hermes_api/hermes_worker cannot reach private; nobody creates in public');

-- pgqueuer: the columns Hermes writes (private.enqueue_job) and the workers read --
SELECT tables_are('pgqueuer',
  ARRAY['pgqueuer', 'pgqueuer_log', 'pgqueuer_schedules', 'pgqueuer_statistics'],
  'pgqueuer has its four tables');
SELECT columns_are('pgqueuer', 'pgqueuer',
  ARRAY['id', 'priority', 'queue_manager_id', 'created', 'updated', 'heartbeat', 'execute_after',
        'status', 'entrypoint', 'dedupe_key', 'payload', 'headers', 'attempts', 'slot'],
  'pgqueuer.pgqueuer has the pgqueuer 1.6.0 columns');
SELECT columns_are('pgqueuer', 'pgqueuer_log',
  ARRAY['id', 'created', 'job_id', 'status', 'priority', 'entrypoint', 'traceback', 'aggregated'],
  'pgqueuer.pgqueuer_log has the pgqueuer 1.6.0 columns');
SELECT columns_are('pgqueuer', 'pgqueuer_schedules',
  ARRAY['id', 'expression', 'entrypoint', 'heartbeat', 'created', 'updated', 'next_run',
        'last_run', 'status'],
  'pgqueuer.pgqueuer_schedules has the pgqueuer 1.6.0 columns');
SELECT columns_are('pgqueuer', 'pgqueuer_statistics',
  ARRAY['id', 'created', 'count', 'priority', 'status', 'entrypoint'],
  'pgqueuer.pgqueuer_statistics has the pgqueuer 1.6.0 columns');
SELECT results_eq($$
  SELECT a.attname::text COLLATE "default", format_type(a.atttypid, a.atttypmod), a.attnotnull
    FROM pg_attribute a
   WHERE a.attrelid = 'pgqueuer.pgqueuer'::regclass
     AND a.attname IN ('priority', 'execute_after', 'status', 'entrypoint', 'payload')
   ORDER BY a.attnum
$$, $$ VALUES
  ('priority', 'integer', true),
  ('execute_after', 'timestamp with time zone', true),
  ('status', 'pgqueuer.pgqueuer_status', true),
  ('entrypoint', 'text', true),
  ('payload', 'bytea', false)
$$, 'the pgqueuer columns private.enqueue_job writes have the expected types');
SELECT enum_has_labels('pgqueuer', 'pgqueuer_status',
  ARRAY['queued', 'picked', 'successful', 'exception', 'canceled', 'deleted', 'failed'],
  'pgqueuer_status has the pgqueuer 1.6.0 labels');

SELECT is_empty($$
  SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
   WHERE n.nspname IN ('app', 'private', 'api')
     AND EXISTS (SELECT 1 FROM unnest(p.proconfig) s WHERE s LIKE 'search_path=%')
     AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) s WHERE s = 'search_path=pg_catalog, pg_temp')
$$, 'every pinned search_path is exactly pg_catalog, pg_temp (pg_temp last: no shadowing)');
SELECT is_empty($$
  SELECT r FROM unnest(ARRAY['hermes_api', 'hermes_worker', 'hermes_authenticator',
                             'hermes_integrator', 'hermes_anon']) r
   WHERE has_database_privilege(r, current_database(), 'TEMPORARY')
$$, 'no client role may create temporary objects in this database');

SELECT * FROM finish();
ROLLBACK;
