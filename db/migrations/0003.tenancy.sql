-- Tenants, API keys, the audit log and deployment settings.
-- depends: 0001.roles-schemas

CREATE TABLE private.settings (
  key   text PRIMARY KEY,
  value text NOT NULL
);
COMMENT ON TABLE private.settings IS
  E'Deployment settings owned by the database (e.g. the HS256 secret that signs API keys,\n'
  'shared with PostgREST through its in-database configuration).';

-- 64 hex characters from the server's strong random source (gen_random_uuid is v4).
INSERT INTO private.settings (key, value)
VALUES ('jwt_secret', replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''));

CREATE TYPE app.environment AS ENUM ('prod', 'sandbox', 'test');
COMMENT ON TYPE app.environment IS 'prod sends for real; sandbox goes to provider simulators; test is for automated tests.';

CREATE TABLE app.tenants (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name             text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
  environment      app.environment NOT NULL DEFAULT 'sandbox',
  status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
  default_sms_from text CHECK (default_sms_from ~ '^\+[1-9][0-9]{6,14}$'),
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE app.tenants IS 'A business using Hermes. Every tenant-owned row carries tenant_id.';
COMMENT ON COLUMN app.tenants.default_sms_from IS 'E.164 sender used when a message names no "from".';

CREATE TABLE app.api_keys (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id     uuid REFERENCES app.tenants (id) ON DELETE RESTRICT,
  prefix        text NOT NULL UNIQUE CHECK (prefix ~ '^hk_[a-z]+_[0-9a-f]{12}$'),
  secret_hash   bytea NOT NULL UNIQUE CHECK (length(secret_hash) = 32),
  name          text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
  scopes        text[] NOT NULL CHECK (
                  cardinality(scopes) > 0
                  AND scopes <@ ARRAY['admin', 'messages:write', 'keys:write', 'read']),
  created_at    timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz,
  revoked_at    timestamptz,
  last_used_at  timestamptz,
  rotated_from  uuid REFERENCES app.api_keys (id) ON DELETE RESTRICT,
  -- Platform keys (admin) belong to no tenant; tenant keys never carry admin.
  CHECK ((tenant_id IS NULL) = ('admin' = ANY (scopes)))
);
CREATE INDEX api_keys_tenant_idx ON app.api_keys (tenant_id, created_at);
COMMENT ON TABLE app.api_keys IS
  E'API keys. The token is shown once at creation; only its sha256 is stored.\n'
  'The token is an HS256 JWT so that PostgREST accepts the same bearer header as the command API;\n'
  'the database check of its hash (private.check_request) is what makes it valid.';
COMMENT ON COLUMN app.api_keys.prefix IS 'Public, non-secret identifier shown in listings and logs (hk_<env>_<12 hex>).';
COMMENT ON COLUMN app.api_keys.scopes IS 'admin (platform), messages:write, keys:write, read.';
COMMENT ON COLUMN app.api_keys.expires_at IS 'Set on the old key when it is rotated, to give clients an overlap.';

-- Append-only ledger of every command. Partitioned by month like the message store.
CREATE SEQUENCE app.audit_log_id_seq AS bigint;
CREATE TABLE app.audit_log (
  id          bigint NOT NULL DEFAULT nextval('app.audit_log_id_seq'),
  created_at  timestamptz NOT NULL DEFAULT now(),
  tenant_id   uuid,
  api_key_id  uuid,
  action      text NOT NULL,
  target_id   text,
  details     jsonb NOT NULL DEFAULT '{}',
  PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
ALTER SEQUENCE app.audit_log_id_seq OWNED BY app.audit_log.id;
CREATE INDEX audit_log_tenant_idx ON app.audit_log (tenant_id, created_at);
COMMENT ON TABLE app.audit_log IS 'Append-only record of every command: who (key), what (action), on what, when.';

-- Append-only enforcement, in addition to the absence of UPDATE/DELETE grants
-- (which a table owner or superuser would bypass).
CREATE FUNCTION private.tg_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING
    ERRCODE = 'HM405',
    MESSAGE = format('%I.%I is append-only: %s is not allowed', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP),
    DETAIL = 'append_only',
    HINT = 'Record a new, compensating row instead.';
END
$$;
COMMENT ON FUNCTION private.tg_append_only() IS 'Trigger function: refuses UPDATE, DELETE and TRUNCATE on ledgers.';

CREATE TRIGGER _010_append_only BEFORE UPDATE OR DELETE ON app.audit_log
  FOR EACH ROW EXECUTE FUNCTION private.tg_append_only();
CREATE TRIGGER _011_append_only_truncate BEFORE TRUNCATE ON app.audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION private.tg_append_only();

-- Row-level security: the read API sees one tenant, set per request by
-- private.check_request() in the transaction-local setting hermes.tenant_id.
ALTER TABLE app.tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.tenants FORCE ROW LEVEL SECURITY;
ALTER TABLE app.api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.api_keys FORCE ROW LEVEL SECURITY;
ALTER TABLE app.audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.audit_log FORCE ROW LEVEL SECURITY;

CREATE POLICY tenants_integrator_select ON app.tenants FOR SELECT TO hermes_integrator
  USING (id = nullif(current_setting('hermes.tenant_id', true), '')::uuid);
CREATE POLICY api_keys_integrator_select ON app.api_keys FOR SELECT TO hermes_integrator
  USING (tenant_id = nullif(current_setting('hermes.tenant_id', true), '')::uuid);
CREATE POLICY audit_log_integrator_select ON app.audit_log FOR SELECT TO hermes_integrator
  USING (tenant_id = nullif(current_setting('hermes.tenant_id', true), '')::uuid);

REVOKE ALL ON app.tenants, app.api_keys, app.audit_log FROM PUBLIC;
REVOKE ALL ON private.settings FROM PUBLIC;
