-- Every channel, and the cascade (issue: one API for every channel).
--
-- A message is an ordered list of steps (1 to 5), each one attempt on one channel
-- (sms, email, push, whatsapp) with its own recipient, sender, content and receipt
-- timeout. Every step's attempt row is written at intake: the first that may go is
-- 'pending' (its send job enqueued), the later ones 'waiting', and a step that may not
-- go at all (opted out, suppressed, no address) 'rejected' with its reasons. When the
-- current step ends without delivery (failed, undelivered, rejected at its claim, no
-- final receipt within its timeout: 'timed_out'), the next waiting step becomes
-- pending (private.settle_attempts); 'delivered' ends the message and cancels the
-- steps not handed off yet. A message's columns channel/to/from/body are its current
-- step's.
-- depends: 0017.import-fixes

ALTER TABLE app.messages DROP CONSTRAINT messages_channel_check;
ALTER TABLE app.messages ADD CONSTRAINT messages_channel_check
  CHECK (channel IN ('sms', 'email', 'push', 'whatsapp'));
ALTER TABLE app.messages
  ADD COLUMN steps        int NOT NULL DEFAULT 1 CHECK (steps BETWEEN 1 AND 5),
  ADD COLUMN current_step int NOT NULL DEFAULT 1,
  ADD COLUMN contact_id   uuid;
ALTER TABLE app.messages ADD CONSTRAINT messages_current_step_check CHECK (current_step BETWEEN 1 AND steps);
-- A push has no sender; a step to a contact may have no address (rejected: missing_address).
ALTER TABLE app.messages ALTER COLUMN to_address DROP NOT NULL, ALTER COLUMN from_address DROP NOT NULL;
COMMENT ON COLUMN app.messages.steps IS 'How many cascade steps the message has (1: a single channel).';
COMMENT ON COLUMN app.messages.current_step IS
  'The step (attempt_no) being tried, or the one that ended the message; channel, to_address, from_address and body are its.';
COMMENT ON COLUMN app.messages.contact_id IS 'The identity the message was addressed to, when it named one (contact_id).';

ALTER TABLE app.message_attempts
  ADD COLUMN to_address   text,
  ADD COLUMN from_address text,
  ADD COLUMN content      jsonb NOT NULL DEFAULT '{}',
  ADD COLUMN step_timeout interval CHECK (step_timeout > interval '0'),
  ADD COLUMN timer_job_id bigint,
  ADD COLUMN reasons      jsonb,
  ADD COLUMN completed_at timestamptz;
UPDATE app.message_attempts a
   SET to_address = m.to_address, from_address = m.from_address,
       content = jsonb_build_object('body', m.body),
       completed_at = CASE WHEN a.status IN ('delivered', 'undelivered', 'failed', 'rejected', 'unknown')
                           THEN a.updated_at END
  FROM app.messages m
 WHERE m.id = a.message_id AND m.created_at = a.message_created_at;
ALTER TABLE app.message_attempts DROP CONSTRAINT message_attempts_status_check;
ALTER TABLE app.message_attempts ADD CONSTRAINT message_attempts_status_check CHECK (status IN (
  'waiting',      -- a later cascade step: starts when the earlier ones end without delivery
  'pending',      -- waiting for a worker
  'claimed',      -- a worker may be calling the provider: outcome unknown
  'handed_off',   -- the provider accepted it (provider_message_id set)
  'timed_out',    -- handed off, no final receipt within the step's timeout: the cascade moved on
                  -- (a late receipt still lands here)
  'delivered', 'undelivered', 'failed',
  'rejected',     -- not sent: ineligible (reasons), at intake or at its claim
  'canceled',     -- not sent: an earlier step was delivered first
  'unknown'));    -- handed off, no final receipt within receipt_timeout
ALTER TABLE app.message_attempts ADD CONSTRAINT message_attempts_channel_check
  CHECK (channel IN ('sms', 'email', 'push', 'whatsapp'));
COMMENT ON COLUMN app.message_attempts.attempt_no IS 'The cascade step: 1 first, then each fallback.';
COMMENT ON COLUMN app.message_attempts.content IS
  'What the step sends: {body, subject?, html?, title?, data?} (per channel).';
COMMENT ON COLUMN app.message_attempts.step_timeout IS
  'How long after hand-off the step waits for a final receipt before the cascade moves on (steps with a next step).';
COMMENT ON COLUMN app.message_attempts.timer_job_id IS 'The pgqueuer job of the step''s timer, deleted when the message ends first.';

ALTER TABLE app.message_events DROP CONSTRAINT message_events_event_type_check;
ALTER TABLE app.message_events ADD CONSTRAINT message_events_event_type_check CHECK (event_type IN (
  'accepted', 'claimed', 'reclaimed', 'reclaim_deferred', 'reconciled', 'reconcile_ambiguous',
  'resend', 'handed_off', 'requeued', 'receipt_timeout',
  'send_error', 'retry_scheduled', 'provider_status', 'rejected', 'deferred',
  'fallback',       -- the cascade moved on to the next step
  'step_timeout',   -- a step had no final receipt within its timeout
  'canceled',       -- steps not handed off when an earlier one was delivered
  'late_receipt',   -- a final receipt for a message already finished: recorded, changes nothing
  'corrected'));    -- the step that finished the message got a higher-ranked final status

-- Every provider's statuses. Ranks: >= 100 terminal; a higher-ranked terminal status
-- corrects a lower one (SES documents no ordering: a Bounce may follow a Delivery, and
-- the bounce is the truth), an equal one does not (Twilio: the first terminal wins).
INSERT INTO private.provider_statuses (provider, status, rank, message_status) VALUES
  -- Amazon SES event types (configuration-set event destinations, via SNS)
  ('ses', 'Send', 20, 'sent'), ('ses', 'DeliveryDelay', 30, 'sent'),
  ('ses', 'Delivery', 100, 'delivered'), ('ses', 'Complaint', 105, 'delivered'),
  ('ses', 'Reject', 100, 'failed'), ('ses', 'RenderingFailure', 100, 'failed'),
  ('ses', 'Bounce', 120, 'undelivered'),
  -- FCM HTTP v1 answers with the message name and sends no receipts: accepted is final
  ('fcm', 'accepted', 100, 'delivered'),
  -- WhatsApp Cloud API: the send answers accepted; status webhooks follow
  ('whatsapp', 'accepted', 10, 'sent'), ('whatsapp', 'sent', 40, 'sent'),
  ('whatsapp', 'delivered', 100, 'delivered'), ('whatsapp', 'read', 110, 'delivered'),
  ('whatsapp', 'failed', 100, 'failed'),
  -- Vonage SMS API: the send answers status 0 (submitted); delivery receipts follow
  ('vonage', 'submitted', 10, 'sent'), ('vonage', 'accepted', 20, 'sent'),
  ('vonage', 'buffered', 30, 'sent'), ('vonage', 'unknown', 50, 'sent'),
  ('vonage', 'delivered', 100, 'delivered'), ('vonage', 'expired', 100, 'undelivered'),
  ('vonage', 'failed', 100, 'failed'), ('vonage', 'rejected', 100, 'failed');

-- The providers Hermes speaks: the channel each serves, whether it is the channel's
-- default (when the tenant routes it nowhere else), and whether Hermes can ask it about
-- its messages (lookups: reconcile an unknown hand-off, find a lost receipt).
CREATE TABLE private.providers (
  provider   text PRIMARY KEY,
  channel    text NOT NULL CHECK (channel IN ('sms', 'email', 'push', 'whatsapp')),
  is_default boolean NOT NULL DEFAULT false,
  lookups    boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX providers_default_idx ON private.providers (channel) WHERE is_default;
INSERT INTO private.providers (provider, channel, is_default, lookups) VALUES
  ('twilio', 'sms', true, true), ('vonage', 'sms', false, false), ('ses', 'email', true, false),
  ('fcm', 'push', true, false), ('whatsapp', 'whatsapp', true, false);
REVOKE ALL ON private.providers FROM PUBLIC;

-- Senders and cascade defaults.
ALTER TABLE app.tenants
  ADD COLUMN default_email_from text CHECK (length(default_email_from) <= 320 AND default_email_from ~ '@'),
  ADD COLUMN default_whatsapp_from text CHECK (default_whatsapp_from ~ '^\+[1-9][0-9]{6,14}$');
COMMENT ON COLUMN app.tenants.default_email_from IS 'Sender (From) of email that names none, e.g. Acme <hello@acme.example>.';
COMMENT ON COLUMN app.tenants.default_whatsapp_from IS 'WhatsApp business number of messages that name none.';
ALTER TABLE app.tenant_policies
  ADD COLUMN cascade_channels text[] NOT NULL DEFAULT '{sms}'
    CHECK (cardinality(cascade_channels) BETWEEN 1 AND 5
           AND cascade_channels <@ ARRAY['sms', 'email', 'push', 'whatsapp']),
  ADD COLUMN step_timeouts jsonb NOT NULL DEFAULT '{"sms": 300, "email": 900, "push": 300, "whatsapp": 300}'
    CHECK (jsonb_typeof(step_timeouts) = 'object');
COMMENT ON COLUMN app.tenant_policies.cascade_channels IS
  'The channel order of a message to a contact that names no channels.';
COMMENT ON COLUMN app.tenant_policies.step_timeouts IS
  'Seconds a step waits for its final receipt before the cascade moves on, per channel (a step may say its own).';

-- Intake carries each message's validated steps.
ALTER TYPE private.intake_item ADD ATTRIBUTE steps jsonb, ADD ATTRIBUTE contact_id uuid;

-- A claimed attempt at a provider Hermes cannot ask waits this long for a receipt
-- before its hand-off is 'unknown' (never resent blindly).
INSERT INTO private.settings (key, value) VALUES ('reconcile_window', '10 minutes');

-- Integrators read the steps of their messages (api.message_attempts; row-level
-- security limits them to their tenant, as for messages).
GRANT SELECT ON app.message_attempts TO hermes_integrator, hermes_anon;
