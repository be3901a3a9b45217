-- The sender registry (issue 19: "any tenant can send as another tenant's number").
--
-- Until now a message's "from" was checked for its shape only: any tenant could send
-- as another's number or address, and recipients' STOP replies then went to the other
-- tenant. app.senders lists the deployment's senders -- phone numbers (SMS), WhatsApp
-- business numbers, email addresses and verified email domains -- each with the tenant
-- it belongs to. A step may go from a sender only when an active row matches it and
-- belongs to the step's tenant, or is one of the simulators' shared numbers and the
-- tenant is not a production one (private.senders_allowed: the one rule, at intake and
-- again at claim). Inbound messages find their tenant by the number written to.
--
-- Data: every tenant's default senders become rows owned by that tenant; the numbers
-- of the simulators that `make run` and the tests use become shared rows.
-- depends: 0021.calling-mark

CREATE TABLE app.senders (
  id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  channel             text NOT NULL CHECK (channel IN ('sms', 'whatsapp', 'email')),
  kind                text NOT NULL DEFAULT 'address' CHECK (kind IN ('address', 'domain')),
  address             text NOT NULL,
  tenant_id           uuid REFERENCES app.tenants (id),
  shared              boolean NOT NULL DEFAULT false,
  provider_account_id uuid REFERENCES app.provider_accounts (id),
  number_type         text CHECK (number_type IN ('long_code', 'toll_free', 'short_code', 'alphanumeric')),
  time_zone           text CHECK (length(time_zone) BETWEEN 1 AND 64),
  status              text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'released')),
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  released_at         timestamptz,
  -- Phones (SMS, WhatsApp) are E.164 numbers with a number type; email is an exact
  -- lower-cased address, or a lower-cased domain (any address at it).
  CONSTRAINT senders_address_check CHECK (CASE
    WHEN channel IN ('sms', 'whatsapp')
      THEN kind = 'address' AND address ~ '^\+[1-9][0-9]{6,14}$' AND number_type IS NOT NULL
    WHEN kind = 'address'
      THEN address = lower(address) AND length(address) <= 254
           AND address ~ '^[^@\s<>(),;:"\[\]]{1,64}@[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$'
           AND number_type IS NULL
    ELSE address = lower(address) AND length(address) <= 253
         AND address ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$'
         AND number_type IS NULL END),
  -- A shared sender belongs to no tenant (every sandbox and test tenant may use it).
  CONSTRAINT senders_shared_check CHECK (NOT shared OR (tenant_id IS NULL AND provider_account_id IS NULL)),
  CONSTRAINT senders_released_check CHECK ((status = 'released') = (released_at IS NOT NULL))
);
-- One live (active or suspended) row per sender: a number has one owner at a time.
CREATE UNIQUE INDEX senders_live_idx ON app.senders (channel, kind, address) WHERE status <> 'released';
-- A tenant's senders (api.senders, the admin list).
CREATE INDEX senders_tenant_idx ON app.senders (tenant_id, channel, address);
COMMENT ON TABLE app.senders IS
  E'The deployment''s senders (phone numbers, WhatsApp business numbers, email addresses and domains) '
  'and the tenant each belongs to. Global, not partitioned by tenant, on purpose: a number '
  'belongs to one production tenant at a time, and the unique key that says so spans '
  'every tenant. Operator-managed (admin routes, app.register_sender / app.update_sender).';
COMMENT ON COLUMN app.senders.kind IS
  'address: this exact sender; domain (email only): any address at this domain (a verified domain).';
COMMENT ON COLUMN app.senders.address IS
  'E.164 for sms and whatsapp; a lower-cased email address or domain for email.';
COMMENT ON COLUMN app.senders.tenant_id IS 'The owner; NULL: shared (when shared) or assigned to no tenant yet.';
COMMENT ON COLUMN app.senders.shared IS
  'A simulator''s number any sandbox or test tenant may send from; never a production tenant''s.';
COMMENT ON COLUMN app.senders.provider_account_id IS
  'The owner''s provider account the number lives in; NULL: the deployment''s.';
COMMENT ON COLUMN app.senders.number_type IS 'long_code, toll_free, short_code or alphanumeric (phones); NULL for email.';
COMMENT ON COLUMN app.senders.time_zone IS 'The sender''s time zone (a pg_timezone_names name), when known.';
COMMENT ON COLUMN app.senders.status IS
  'active: may send; suspended: may not send, still the owner''s (inbound still reaches it); released: given up.';

ALTER TABLE app.senders ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.senders FORCE ROW LEVEL SECURITY;
-- The read API (api.senders): the tenant's own senders and, for a tenant that is not a
-- production one, the shared ones.
GRANT SELECT (id, environment) ON app.tenants TO hermes_integrator;
CREATE POLICY senders_integrator_select ON app.senders FOR SELECT TO hermes_integrator
  USING (tenant_id = nullif(current_setting('hermes.tenant_id', true), '')::uuid
         OR (shared AND EXISTS (SELECT 1 FROM app.tenants t
                                 WHERE t.id = nullif(current_setting('hermes.tenant_id', true), '')::uuid
                                   AND t.environment <> 'prod')));
REVOKE ALL ON app.senders FROM PUBLIC;
GRANT SELECT ON app.senders TO hermes_integrator, hermes_anon;

-- The simulators' numbers: Twilio's magic "From" (+15005550006), the WhatsApp
-- simulator's first business number, and the email domain of the demo and the tests.
-- (The WhatsApp simulator's second number, +14155550169, is left free: the tests
-- register it to one tenant, to see inbound messages find that tenant.)
INSERT INTO app.senders (channel, kind, address, shared, number_type) VALUES
  ('sms', 'address', '+15005550006', true, 'long_code'),
  ('whatsapp', 'address', '+14155550170', true, 'long_code'),
  ('email', 'domain', 'hermes.example', true, NULL);

-- Every tenant's default senders become its rows. A default that several tenants have
-- goes to the oldest production tenant among them; when none of them is a production
-- tenant, it becomes shared (they shared it already; production tenants never may).
-- Defaults that are shared rows stay shared.
WITH defaults AS (
  SELECT t.id AS tenant_id, t.environment, t.created_at, d.channel,
         CASE WHEN d.channel = 'email'
              THEN lower(btrim(coalesce(substring(d.sender FROM '<([^<>]*)>\s*$'), d.sender)))
              ELSE d.sender END AS address
    FROM app.tenants t
   CROSS JOIN LATERAL (VALUES ('sms', t.default_sms_from), ('email', t.default_email_from),
                              ('whatsapp', t.default_whatsapp_from)) d(channel, sender)
   WHERE d.sender IS NOT NULL
), valid AS (
  SELECT d.* FROM defaults d
   WHERE (d.channel <> 'email' AND d.address ~ '^\+[1-9][0-9]{6,14}$')
      OR (d.channel = 'email' AND length(d.address) <= 254
          AND d.address ~ '^[^@\s<>(),;:"\[\]]{1,64}@[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$')
), claims AS (
  SELECT v.channel, v.address,
         (array_agg(v.tenant_id ORDER BY v.created_at, v.tenant_id) FILTER (WHERE v.environment = 'prod'))[1] AS prod_owner,
         min(v.tenant_id::text) AS any_owner, count(DISTINCT v.tenant_id) AS tenants
    FROM valid v
   WHERE NOT EXISTS (SELECT 1 FROM app.senders s
                      WHERE s.channel = v.channel AND s.status <> 'released'
                        AND (s.address = v.address
                             OR (s.kind = 'domain' AND s.address = split_part(v.address, '@', 2))))
   GROUP BY v.channel, v.address
)
INSERT INTO app.senders (channel, kind, address, tenant_id, shared, number_type)
SELECT c.channel, 'address', c.address,
       CASE WHEN c.prod_owner IS NOT NULL THEN c.prod_owner
            WHEN c.tenants = 1 THEN c.any_owner::uuid END,
       c.prod_owner IS NULL AND c.tenants > 1,
       CASE WHEN c.channel = 'email' THEN NULL
            WHEN c.address ~ '^\+1(800|833|844|855|866|877|888)' THEN 'toll_free'
            ELSE 'long_code' END
  FROM claims c;

-- The production tenants left without their default sender (a shared simulator
-- number, or a number an older production tenant has): the operator must register one.
DO $$
DECLARE
  r record;
BEGIN
  FOR r IN
    SELECT t.id, t.name, d.channel, d.sender
      FROM app.tenants t
     CROSS JOIN LATERAL (VALUES ('sms', t.default_sms_from), ('email', t.default_email_from),
                                ('whatsapp', t.default_whatsapp_from)) d(channel, sender)
     WHERE t.environment = 'prod' AND d.sender IS NOT NULL
       AND NOT EXISTS (
         SELECT 1 FROM app.senders s
          WHERE s.channel = d.channel AND s.tenant_id = t.id AND s.status = 'active'
            AND s.address IN (d.sender, lower(btrim(coalesce(substring(d.sender FROM '<([^<>]*)>\s*$'), d.sender)))))
  LOOP
    RAISE WARNING 'sender registry: production tenant % (%) does not own its default % sender %',
      r.id, r.name, r.channel, r.sender;
  END LOOP;
END
$$;
