-- private.send_eligibility, the rules that depend on time: quiet hours (the recipient's
-- zones from the number, legal windows by state and weekday, the tenant's narrower
-- window, DST) defer marketing to the next opening; cooldowns (same vertical 90 days,
-- another 45, per tenant and vertical, to the second) refuse it. Fixed instants only.
BEGIN;
\ir ../../helpers.psql
SELECT plan(33);

SELECT (pg_temp.new_tenant('Clock Co') -> 'tenant' ->> 'id') AS t \gset
-- One marketing send to p_to at p_now: 'eligible', 'deferred <next allowed time, UTC>' or the codes.
CREATE FUNCTION pg_temp.at(p_tenant uuid, p_to text, p_now timestamptz, p_vertical text DEFAULT NULL,
                           p_category text DEFAULT 'marketing') RETURNS text
LANGUAGE sql AS $$
  SELECT CASE WHEN e.eligible THEN 'eligible'
              WHEN e.next_allowed_at IS NOT NULL THEN 'deferred ' || to_char(e.next_allowed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
              ELSE (SELECT string_agg(r ->> 'code', ',') FROM jsonb_array_elements(e.reasons) r) END
    FROM private.check_send_eligibility(p_tenant, 'sms', p_to, '+15005550006', p_vertical, p_category, p_now) e
$$;

-- San Francisco (America/Los_Angeles), summer (PDT, UTC-7): 08:00-21:00 local.
SELECT is(pg_temp.at(:'t', '+14155550100', '2026-07-15T14:59:59Z'), 'deferred 2026-07-15T15:00:00Z',
  '07:59:59 local: deferred to 08:00 local');
SELECT is(pg_temp.at(:'t', '+14155550100', '2026-07-15T15:00:00Z'), 'eligible', '08:00:00 local: eligible');
SELECT is(pg_temp.at(:'t', '+14155550100', '2026-07-16T03:59:59Z'), 'eligible', '20:59:59 local: eligible');
SELECT is(pg_temp.at(:'t', '+14155550100', '2026-07-16T04:00:00Z'), 'deferred 2026-07-16T15:00:00Z',
  '21:00:00 local (the window is [08:00, 21:00)): deferred to 08:00 the next day');
SELECT is(pg_temp.at(:'t', '+14155550100', '2026-07-16T04:00:00Z', NULL, 'transactional'), 'eligible',
  'transactional messages have no quiet hours');
SELECT results_eq($$SELECT e.reasons -> 0 FROM private.check_send_eligibility(
                      (SELECT id FROM app.tenants WHERE name = 'Clock Co'), 'sms', '+14155550100', NULL, NULL,
                      'marketing', '2026-07-16T04:00:00Z') e$$,
  $$VALUES ('{"code": "quiet_hours", "zones": ["America/Los_Angeles"], "region": "US-CA",
              "next_allowed_at": "2026-07-16T15:00:00+00:00"}'::jsonb)$$,
  'the reason names the zones, the state and the next allowed time');
SELECT is((SELECT eligible FROM private.check_send_eligibility(:'t', 'sms', '+14155550100', NULL, NULL, 'marketing',
                                                                '2026-07-16T04:00:00Z')), false, 'not eligible now');

-- DST: spring forward (2026-03-08, 02:00 PST -> 03:00 PDT) and fall back (2026-11-01).
SELECT is(pg_temp.at(:'t', '+14155550100', '2026-03-08T06:00:00Z'), 'deferred 2026-03-08T15:00:00Z',
  'on the night DST starts (22:00 PST), the next opening is 08:00 PDT (15:00Z, not 16:00Z)');
SELECT is(pg_temp.at(:'t', '+14155550100', '2026-03-07T15:59:59Z'), 'deferred 2026-03-07T16:00:00Z',
  'the day before, 07:59:59 PST: 08:00 PST is 16:00Z');
SELECT is(pg_temp.at(:'t', '+14155550100', '2026-11-01T04:30:00Z'), 'deferred 2026-11-01T16:00:00Z',
  'on the night DST ends (21:30 PDT), the next opening is 08:00 PST (16:00Z)');
SELECT is(pg_temp.at(:'t', '+14155550100', '2026-11-01T15:59:59Z'), 'deferred 2026-11-01T16:00:00Z',
  '07:59:59 PST after the change: still closed');

-- States: Florida 08:00-20:00 (Miami, America/New_York).
SELECT is(pg_temp.at(:'t', '+13055550100', '2026-07-15T23:59:59Z'), 'eligible', 'Florida 19:59:59 EDT: eligible');
SELECT is(pg_temp.at(:'t', '+13055550100', '2026-07-16T00:00:00Z'), 'deferred 2026-07-16T12:00:00Z',
  'Florida 20:00 EDT: deferred to 08:00 EDT (the state''s window, stricter than 21:00)');
SELECT is(pg_temp.at(:'t', '+12125550100', '2026-07-16T00:30:00Z'), 'eligible', 'New York 20:30 EDT: eligible (21:00)');
-- Texas: 09:00-21:00, Sundays 12:00-21:00 (Dallas, America/Chicago).
SELECT is(pg_temp.at(:'t', '+12145550100', '2026-07-20T13:59:59Z'), 'deferred 2026-07-20T14:00:00Z',
  'Texas Monday 08:59:59 CDT: deferred to 09:00');
SELECT is(pg_temp.at(:'t', '+12145550100', '2026-07-19T15:00:00Z'), 'deferred 2026-07-19T17:00:00Z',
  'Texas Sunday 10:00 CDT: deferred to 12:00 (the Sunday rule)');
SELECT is(pg_temp.at(:'t', '+12145550100', '2026-07-18T15:00:00Z'), 'eligible', 'Texas Saturday 10:00 CDT: eligible');
SELECT is(pg_temp.at(:'t', '+12145550100', '2026-07-19T02:30:00Z'), 'deferred 2026-07-19T17:00:00Z',
  'Saturday 21:30 CDT: the next opening is Sunday noon');
-- Two zones for one prefix (775, Nevada: Boise and Los Angeles): inside the window in both.
SELECT is(pg_temp.at(:'t', '+17755550100', '2026-07-15T14:30:00Z'), 'deferred 2026-07-15T15:00:00Z',
  'two zones: 08:30 MDT but 07:30 PDT -> deferred to 08:00 PDT');
SELECT is(pg_temp.at(:'t', '+17755550100', '2026-07-16T03:00:00Z'), 'deferred 2026-07-16T15:00:00Z',
  'two zones: 20:00 PDT but 21:00 MDT -> deferred to the next day');
-- Elsewhere: the default window in the number's zone (London, BST).
SELECT is(pg_temp.at(:'t', '+442079460958', '2026-07-15T06:59:59Z'), 'deferred 2026-07-15T07:00:00Z',
  'London 07:59:59 BST: deferred to 08:00 BST');

-- The tenant's policy narrows the window, never widens it.
SELECT pg_temp.set_policy(:'t', '{"quiet_start": "10:00", "quiet_end": "18:00"}') IS NULL AS p \gset
SELECT is(pg_temp.at(:'t', '+14155550100', '2026-07-15T16:00:00Z'), 'deferred 2026-07-15T17:00:00Z',
  'a tenant window 10:00-18:00: 09:00 local is deferred to 10:00');
SELECT pg_temp.set_policy(:'t', '{"quiet_start": "06:00", "quiet_end": "23:00"}') IS NULL AS p2 \gset
SELECT is(pg_temp.at(:'t', '+14155550100', '2026-07-15T14:00:00Z'), 'deferred 2026-07-15T15:00:00Z',
  'a wider tenant window does not open 07:00: the legal window still applies');

-- Cooldowns: the tenant's contact history, to the second.
SELECT (pg_temp.new_tenant('Cooldown Co') -> 'tenant' ->> 'id') AS c \gset
INSERT INTO app.contact_history (tenant_id, address_hash, vertical, last_contact_at, last_message_id)
VALUES (:'c', private.address_hash('+14155550200'), 'solar', '2026-04-01T12:00:00Z', gen_random_uuid()),
       (:'c', private.address_hash('+14155550201'), '*', '2026-04-01T12:00:00Z', NULL);
-- (15:00Z is 08:00 PDT: inside quiet hours' window.)
SELECT is(pg_temp.at(:'c', '+14155550200', '2026-06-30T11:59:59Z', 'solar', 'transactional'), 'eligible',
  'transactional messages have no cooldown');
SELECT is(pg_temp.at(:'c', '+14155550200', '2026-06-30T11:59:59Z'), 'deferred 2026-06-30T15:00:00Z',
  'without a vertical there is no cooldown (only quiet hours here)');
SELECT is(pg_temp.at(:'c', '+14155550200', '2026-06-30T11:59:59Z', 'solar'), 'cooldown',
  'the same vertical, 90 days minus a second after the contact: cooldown');
SELECT is(pg_temp.at(:'c', '+14155550200', '2026-06-30T15:00:00Z', 'solar'), 'eligible',
  '90 days and 3 hours after: eligible (the cooldown ended at 90 days to the second)');
SELECT is(pg_temp.at(:'c', '+14155550200', '2026-05-16T11:59:59Z', 'roofing'), 'cooldown',
  'another vertical, 45 days minus a second: cooldown');
SELECT is(pg_temp.at(:'c', '+14155550200', '2026-05-16T15:00:00Z', 'roofing'), 'eligible',
  'another vertical after 45 days: eligible');
SELECT is(pg_temp.at(:'c', '+14155550201', '2026-06-01T15:00:00Z', 'roofing'), 'cooldown',
  'a contact of unknown vertical (legacy seed, *) counts as the same vertical: 90 days');
INSERT INTO app.vertical_policies (tenant_id, vertical, cooldown_same) VALUES (:'c', 'solar', '30 days');
SELECT is(pg_temp.at(:'c', '+14155550200', '2026-05-01T15:00:00Z', 'solar'), 'eligible',
  'a vertical policy of 30 days: eligible after 30 days');
SELECT results_eq($$SELECT e.reasons FROM private.check_send_eligibility(
                      (SELECT id FROM app.tenants WHERE name = 'Cooldown Co'), 'sms', '+14155550200', NULL, 'solar',
                      'marketing', '2026-04-15T15:00:00Z') e$$,
  $$VALUES ('[{"code": "cooldown", "until": "2026-05-01T12:00:00+00:00", "vertical": "solar",
               "last_contact_at": "2026-04-01T12:00:00+00:00"}]'::jsonb)$$,
  'the reason names the vertical, the last contact and until when');
-- Two candidates of one batch to the same recipient: only the first.
SELECT results_eq($$SELECT idx, eligible, reasons -> 0 ->> 'detail' FROM private.send_eligibility(ARRAY[
    ROW(1, (SELECT id FROM app.tenants WHERE name = 'Cooldown Co'), 'sms', '+14155550299', '+15005550006', 'solar', 'marketing', NULL),
    ROW(2, (SELECT id FROM app.tenants WHERE name = 'Cooldown Co'), 'sms', '+14155550299', '+15005550006', 'roofing', 'marketing', NULL)
  ]::private.send_candidate[], '2026-07-15T16:00:00Z')$$,
  $$VALUES (1, true, NULL::text), (2, false, 'same_batch')$$, 'the second of one batch to the same recipient: cooldown');

SELECT * FROM finish();
ROLLBACK;
