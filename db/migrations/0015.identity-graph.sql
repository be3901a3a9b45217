-- The identity graph (#5): people (identities), their phones, emails and postal
-- properties, with provenance on every link, and the import tables its five stages
-- (land, parse, resolve, merge, record) write.
--
-- An identity is keyed by identity_hash = normalized name + property_hash (a row with
-- no address: name + its first phone, else its first email), deliberately biased to
-- under-merge: two people with one name at different addresses stay two; the same
-- person at two addresses is two identities until something stronger (an external id)
-- ties them. Links (identity_phones, ...) are insert-only and keep where they were first
-- seen (import, row, confidence, source); scalar values on an identity resolve
-- last-writer-wins by (confidence, recency) and record where the winner came from.
-- depends: 0014.erasure

CREATE TABLE app.imports (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id       uuid NOT NULL,
  kind            text NOT NULL CHECK (kind IN ('universe', 'enrichment')),
  status          text NOT NULL DEFAULT 'landing'
                    CHECK (status IN ('landing', 'parsing', 'merging', 'completed', 'failed')),
  parser_version  text,
  file_name       text,
  mapping         jsonb NOT NULL DEFAULT '{}',
  api_key_id      uuid,
  rows_total      bigint NOT NULL DEFAULT 0,
  rows_rejected   bigint NOT NULL DEFAULT 0,
  rows_unmatched  bigint NOT NULL DEFAULT 0,   -- enrichment rows naming no known identity
  identities_created bigint NOT NULL DEFAULT 0,
  identities_matched bigint NOT NULL DEFAULT 0,
  stage_seconds   jsonb NOT NULL DEFAULT '{}',
  error           text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  completed_at    timestamptz
);
CREATE INDEX imports_tenant_idx ON app.imports (tenant_id, created_at DESC);
COMMENT ON TABLE app.imports IS
  'One per uploaded file or re-parse: kind, stage, counts (accepted + rejected = rows_total).';

-- LAND: every source row verbatim (all columns, by header name), kept so that a newer
-- parser can re-run without a re-upload.
CREATE TABLE app.file_rows (
  import_id   bigint NOT NULL REFERENCES app.imports (id),
  row_number  bigint NOT NULL,            -- 1 = the first data row
  tenant_id   uuid NOT NULL,
  payload     jsonb NOT NULL,
  PRIMARY KEY (import_id, row_number)
);
COMMENT ON TABLE app.file_rows IS 'LAND: each source row verbatim, as {header: value}.';

-- PARSE's output, one per landed row and parser version: normalized values (phones
-- E.164, emails lower-cased, address parts normalized) or the reason it was rejected.
CREATE TABLE app.import_extractions (
  import_id       bigint NOT NULL REFERENCES app.imports (id),
  row_number      bigint NOT NULL,
  tenant_id       uuid NOT NULL,
  parser_version  text NOT NULL,
  first_name      text,
  last_name       text,
  name_norm       text,                   -- the parser's normalized full name (the key)
  phones          text[] NOT NULL DEFAULT '{}',
  emails          text[] NOT NULL DEFAULT '{}',
  line1           text,
  city            text,
  region          text,
  postal_code     text,
  country         text,
  external_system text,
  external_id     text,
  vertical        text,
  confidence      real NOT NULL DEFAULT 1 CHECK (confidence > 0 AND confidence <= 1),
  observed_at     timestamptz NOT NULL,   -- when the source says it saw this (default: the upload)
  rejected        text,                   -- the reason, when PARSE refused the row
  merged          boolean NOT NULL DEFAULT false,
  PRIMARY KEY (import_id, row_number)
);
CREATE INDEX import_extractions_pending_idx ON app.import_extractions (import_id, row_number)
  WHERE NOT merged;
COMMENT ON TABLE app.import_extractions IS
  'PARSE: one normalized record per landed row (with the parser version), merged set-based by private.merge_import.';

CREATE TABLE app.import_errors (
  import_id   bigint NOT NULL REFERENCES app.imports (id),
  row_number  bigint NOT NULL,
  tenant_id   uuid NOT NULL,
  reason      text NOT NULL,
  detail      text,
  PRIMARY KEY (import_id, row_number)
);
COMMENT ON TABLE app.import_errors IS 'RECORD: each rejected row with its number and reason.';

CREATE TABLE app.properties (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id     uuid NOT NULL,
  property_hash bytea NOT NULL,
  line1         text NOT NULL,
  city          text,
  region        text,
  postal_code   text,
  country       text NOT NULL,
  import_id     bigint NOT NULL,
  row_number    bigint NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, property_hash)
);
COMMENT ON TABLE app.properties IS
  'Normalized postal addresses; property_hash = sha256 of the normalized parts (private.property_hash).';

CREATE TABLE app.identities (
  id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),  -- the merge gives UUIDv7s
  tenant_id         uuid NOT NULL,
  identity_hash     bytea NOT NULL,
  name_norm         text NOT NULL,
  property_id       bigint REFERENCES app.properties (id),
  first_name        text,
  last_name         text,
  -- Where the display name came from: the winner by (confidence, observed_at).
  name_confidence   real NOT NULL,
  name_observed_at  timestamptz NOT NULL,
  name_import_id    bigint NOT NULL,
  name_row_number   bigint NOT NULL,
  created_import_id bigint NOT NULL,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, identity_hash)
);
COMMENT ON TABLE app.identities IS
  'People. identity_hash = normalized name + property (under-merging by design).';

CREATE TABLE app.phone_numbers (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id  uuid NOT NULL,
  e164       text NOT NULL CHECK (e164 ~ '^\+[1-9][0-9]{6,14}$'),
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, e164)
);
CREATE TABLE app.email_addresses (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id  uuid NOT NULL,
  address    text NOT NULL CHECK (address = lower(btrim(address)) AND address LIKE '%_@_%'),
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, address)
);

-- Links, with provenance: the import and row that first showed them, its confidence
-- and source ('import:<kind>').
CREATE TABLE app.identity_phones (
  tenant_id   uuid NOT NULL,
  identity_id uuid NOT NULL REFERENCES app.identities (id),
  phone_id    bigint NOT NULL REFERENCES app.phone_numbers (id),
  confidence  real NOT NULL,
  source      text NOT NULL,
  import_id   bigint NOT NULL,
  row_number  bigint NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (identity_id, phone_id)
);
CREATE INDEX identity_phones_phone_idx ON app.identity_phones (phone_id);
CREATE TABLE app.identity_emails (
  tenant_id   uuid NOT NULL,
  identity_id uuid NOT NULL REFERENCES app.identities (id),
  email_id    bigint NOT NULL REFERENCES app.email_addresses (id),
  confidence  real NOT NULL,
  source      text NOT NULL,
  import_id   bigint NOT NULL,
  row_number  bigint NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (identity_id, email_id)
);
CREATE INDEX identity_emails_email_idx ON app.identity_emails (email_id);
CREATE TABLE app.identity_properties (
  tenant_id   uuid NOT NULL,
  identity_id uuid NOT NULL REFERENCES app.identities (id),
  property_id bigint NOT NULL REFERENCES app.properties (id),
  confidence  real NOT NULL,
  source      text NOT NULL,
  import_id   bigint NOT NULL,
  row_number  bigint NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (identity_id, property_id)
);
CREATE INDEX identity_properties_property_idx ON app.identity_properties (property_id);

CREATE TABLE app.verticals (
  tenant_id  uuid NOT NULL,
  code       text NOT NULL CHECK (code = lower(btrim(code)) AND code <> ''),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, code)
);
CREATE TABLE app.leads (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id   uuid NOT NULL,
  identity_id uuid NOT NULL REFERENCES app.identities (id),
  vertical    text NOT NULL,
  property_id bigint REFERENCES app.properties (id),
  import_id   bigint NOT NULL,
  row_number  bigint NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (tenant_id, vertical) REFERENCES app.verticals (tenant_id, code),
  UNIQUE NULLS NOT DISTINCT (identity_id, vertical, property_id)
);
CREATE TABLE app.external_refs (
  tenant_id   uuid NOT NULL,
  system      text NOT NULL,
  external_id text NOT NULL,
  identity_id uuid NOT NULL REFERENCES app.identities (id),
  import_id   bigint NOT NULL,
  row_number  bigint NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, system, external_id)
);
COMMENT ON TABLE app.external_refs IS
  'A customer system''s id for an identity (first mapping wins); matched before identity_hash.';

-- Row-level security as everywhere in app: integrators read their tenant's rows.
DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['imports', 'file_rows', 'import_extractions', 'import_errors',
                           'properties', 'identities', 'phone_numbers', 'email_addresses',
                           'identity_phones', 'identity_emails', 'identity_properties',
                           'verticals', 'leads', 'external_refs']
  LOOP
    EXECUTE format('ALTER TABLE app.%I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE app.%I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format($p$CREATE POLICY %I ON app.%I FOR SELECT TO hermes_integrator
                      USING (tenant_id = nullif(current_setting('hermes.tenant_id', true), '')::uuid)$p$,
                   t || '_integrator_select', t);
    EXECUTE format('REVOKE ALL ON app.%I FROM PUBLIC', t);
  END LOOP;
END
$$;
-- The read API shows imports and their errors (api.imports, api.import_errors).
GRANT SELECT ON app.imports, app.import_errors TO hermes_integrator, hermes_anon;
