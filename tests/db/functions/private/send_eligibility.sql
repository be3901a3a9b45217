-- private.send_eligibility / private.check_send_eligibility: the one rule set. Consent
-- precedence (the most restrictive applicable event wins; an opt-in lifts an opt-out
-- only if recorded later and of the same or a broader scope and covering channel), scopes on
-- the message's path only, suppressions of the tenant and global ones, set-based.
BEGIN;
\ir ../../helpers.psql
SELECT plan(30);

SELECT (pg_temp.new_tenant('Rules Co') -> 'tenant' ->> 'id') AS t \gset
SELECT (pg_temp.new_tenant('Elsewhere Co') -> 'tenant' ->> 'id') AS u \gset
CREATE FUNCTION pg_temp.at(p_iso text, p_extra jsonb DEFAULT '{}') RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('occurred_at', p_iso) || p_extra $$;

SELECT is(pg_temp.verdict(:'t', '+14155550100'), 'eligible', 'no consent event, no suppression: eligible');
SELECT results_eq($$SELECT eligible, reasons, next_allowed_at FROM private.check_send_eligibility(
                      (SELECT id FROM app.tenants WHERE name = 'Rules Co'), 'sms', '+14155550100', NULL, NULL, 'transactional')$$,
  $$VALUES (true, '[]'::jsonb, NULL::timestamptz)$$, 'eligible: no reasons, no next time');

-- Tenant scope, channel.
SELECT pg_temp.opt(:'t', 'opt_out', '+14155550101', pg_temp.at('2026-05-01T00:00:00Z', '{"channel": "sms"}')) IS NOT NULL AS a \gset
SELECT is(pg_temp.verdict(:'t', '+14155550101'), 'opted_out', 'an sms opt-out refuses sms');
SELECT is(pg_temp.verdict(:'t', '+14155550101', 'whatsapp'), 'eligible', 'but not whatsapp to the same number');
SELECT is(pg_temp.verdict(:'u', '+14155550101'), 'eligible', 'nor another tenant''s sms');
SELECT results_eq($$SELECT r - 'consent_event_id' FROM private.check_send_eligibility(
                      (SELECT id FROM app.tenants WHERE name = 'Rules Co'), 'sms', '+14155550101') e,
                      jsonb_array_elements(e.reasons) r$$,
  $$VALUES ('{"code": "opted_out", "scope": "tenant", "channel": "sms", "occurred_at": "2026-05-01T00:00:00+00:00"}'::jsonb)$$,
  'the reason names the scope, the channel and when the opt-out happened');
SELECT ok((SELECT (r ->> 'consent_event_id')::bigint IN (SELECT id FROM app.consent_events)
             FROM private.check_send_eligibility(:'t', 'sms', '+14155550101') e, jsonb_array_elements(e.reasons) r),
  'and the consent event that decided');

-- Consent ranks in the order Hermes recorded it; occurred_at is evidence only: an opt-in
-- recorded after the opt-out lifts it, even one dated before it; an opt-out recorded
-- after refuses again, even one dated before the opt-in.
SELECT pg_temp.opt(:'t', 'opt_in', '+14155550101', pg_temp.at('2026-04-30T23:59:59Z', '{"channel": "sms"}')) IS NOT NULL AS b \gset
SELECT is(pg_temp.verdict(:'t', '+14155550101'), 'eligible', 'an opt-in recorded later lifts it, even one dated before it');
SELECT pg_temp.opt(:'t', 'opt_out', '+14155550101', pg_temp.at('2026-04-01T00:00:00Z', '{"channel": "sms"}')) IS NOT NULL AS c \gset
SELECT is(pg_temp.verdict(:'t', '+14155550101'), 'opted_out', 'an opt-out recorded later refuses again, even one dated before');
SELECT pg_temp.opt(:'t', 'opt_in', '+14155550101', pg_temp.at('2026-05-01T00:00:01Z', '{"channel": "sms"}')) IS NOT NULL AS d \gset
SELECT is(pg_temp.verdict(:'t', '+14155550101'), 'eligible', 'a newer opt-in of the same cell lifts it');
SELECT pg_temp.opt(:'t', 'opt_out', '+14155550101', pg_temp.at('2026-05-02T00:00:00Z', '{"channel": "sms"}')) IS NOT NULL AS e \gset
SELECT is(pg_temp.verdict(:'t', '+14155550101'), 'opted_out', 'and a newer opt-out again refuses');

-- Channel coverage: an sms opt-in does not lift an all-channel opt-out; an all opt-in lifts an sms one.
SELECT pg_temp.opt(:'t', 'opt_out', '+14155550102', pg_temp.at('2026-05-01T00:00:00Z', '{"channel": "all"}')) IS NOT NULL AS f \gset
SELECT pg_temp.opt(:'t', 'opt_in', '+14155550102', pg_temp.at('2026-05-02T00:00:00Z', '{"channel": "sms"}')) IS NOT NULL AS g \gset
SELECT is(ARRAY[pg_temp.verdict(:'t', '+14155550102'), pg_temp.verdict(:'t', '+14155550102', 'email')],
  ARRAY['opted_out', 'opted_out'], 'an opt-out of all channels refuses every channel; an sms opt-in does not lift it');
SELECT pg_temp.opt(:'t', 'opt_in', '+14155550102', pg_temp.at('2026-05-03T00:00:00Z', '{"channel": "all"}')) IS NOT NULL AS h \gset
SELECT is(pg_temp.verdict(:'t', '+14155550102'), 'eligible', 'a newer opt-in of all channels does');
SELECT pg_temp.opt(:'t', 'opt_out', '+14155550103', pg_temp.at('2026-05-01T00:00:00Z', '{"channel": "sms"}')) IS NOT NULL AS i \gset
SELECT pg_temp.opt(:'t', 'opt_in', '+14155550103', pg_temp.at('2026-05-02T00:00:00Z', '{"channel": "all"}')) IS NOT NULL AS j \gset
SELECT is(pg_temp.verdict(:'t', '+14155550103'), 'eligible', 'an opt-in of all channels lifts an older sms opt-out');

-- Scopes: a vertical opt-out refuses that vertical only; a sender opt-out that sender only.
SELECT pg_temp.opt(:'t', 'opt_out', '+14155550104', pg_temp.at('2026-05-01T00:00:00Z', '{"scope": "vertical", "vertical": "solar"}')) IS NOT NULL AS k \gset
SELECT is(ARRAY[pg_temp.verdict(:'t', '+14155550104', 'sms', 'solar'), pg_temp.verdict(:'t', '+14155550104', 'sms', 'roofing'),
                pg_temp.verdict(:'t', '+14155550104')],
  ARRAY['opted_out', 'eligible', 'eligible'], 'a vertical opt-out: refused in that vertical, not in another or none');
SELECT pg_temp.opt(:'t', 'opt_out', '+14155550105', pg_temp.at('2026-05-01T00:00:00Z', '{"scope": "sender", "sender": "+15005550006"}')) IS NOT NULL AS l \gset
SELECT is(ARRAY[pg_temp.verdict(:'t', '+14155550105', 'sms', NULL, '+15005550006'), pg_temp.verdict(:'t', '+14155550105', 'sms', NULL, '+15005550007')],
  ARRAY['opted_out', 'eligible'], 'a sender opt-out: refused from that sender, not from another');
-- A narrower opt-in never lifts a broader opt-out; a broader one lifts narrower ones.
SELECT pg_temp.opt(:'t', 'opt_out', '+14155550106', pg_temp.at('2026-05-01T00:00:00Z')) IS NOT NULL AS m \gset
SELECT pg_temp.opt(:'t', 'opt_in', '+14155550106', pg_temp.at('2026-05-02T00:00:00Z', '{"scope": "vertical", "vertical": "solar"}')) IS NOT NULL AS n \gset
SELECT is(pg_temp.verdict(:'t', '+14155550106', 'sms', 'solar'), 'opted_out', 'a vertical opt-in does not lift a tenant opt-out');
SELECT pg_temp.opt(:'t', 'opt_in', '+14155550104', pg_temp.at('2026-05-02T00:00:00Z')) IS NOT NULL AS o \gset
SELECT is(pg_temp.verdict(:'t', '+14155550104', 'sms', 'solar'), 'eligible', 'a newer tenant opt-in lifts a vertical opt-out');
SELECT pg_temp.opt(:'t', 'opt_out', '+14155550107', pg_temp.at('2026-05-01T00:00:00Z', '{"scope": "vertical", "vertical": "solar"}')) IS NOT NULL AS p \gset
SELECT pg_temp.opt(:'t', 'opt_in', '+14155550107', pg_temp.at('2026-05-02T00:00:00Z', '{"scope": "sender", "sender": "+15005550006"}')) IS NOT NULL AS q \gset
SELECT is(pg_temp.verdict(:'t', '+14155550107', 'sms', 'solar', '+15005550006'), 'opted_out',
  'a sender opt-in does not lift a vertical opt-out (neither is broader)');

-- Global: refuses every tenant; a tenant opt-in never lifts it.
SELECT pg_temp.opt(NULL, 'opt_out', '+14155550108', pg_temp.at('2026-05-01T00:00:00Z')) IS NOT NULL AS r \gset
SELECT pg_temp.opt(:'t', 'opt_in', '+14155550108', pg_temp.at('2026-05-02T00:00:00Z')) IS NOT NULL AS s \gset
SELECT is(ARRAY[pg_temp.verdict(:'t', '+14155550108'), pg_temp.verdict(:'u', '+14155550108')],
  ARRAY['opted_out', 'opted_out'], 'a global opt-out refuses every tenant, even after a newer tenant opt-in');

-- Suppressions: the tenant's lists and the global ones, by address hash.
SELECT private.record_suppressions(:'t', NULL, 'add', 'do_not_contact', '["+14155550109"]') IS NOT NULL AS sa \gset
SELECT private.record_suppressions(NULL, NULL, 'add', 'litigator', '["+14155550110"]') IS NOT NULL AS sb \gset
SELECT is(ARRAY[pg_temp.verdict(:'t', '+14155550109'), pg_temp.verdict(:'u', '+14155550109'),
                pg_temp.verdict(:'t', '+14155550110'), pg_temp.verdict(:'u', '+14155550110', 'whatsapp')],
  ARRAY['suppressed', 'eligible', 'suppressed', 'suppressed'],
  'a tenant list refuses that tenant''s sends; a global list everyone''s, on every channel');
SELECT is((SELECT reasons FROM private.check_send_eligibility(:'t', 'sms', '+14155550110')),
  '[{"code": "suppressed", "list": "litigator", "scope": "global"}]'::jsonb, 'the reason names the list and its scope');
-- Both at once: every reason, ordered by code.
SELECT pg_temp.opt(:'t', 'opt_out', '+14155550109') IS NOT NULL AS t2 \gset
SELECT is(pg_temp.verdict(:'t', '+14155550109'), 'opted_out,suppressed', 'every reason is given, ordered by code');

-- Set-based: a batch answers per candidate, in order.
SELECT results_eq(format($$SELECT idx, eligible, jsonb_array_length(reasons) FROM private.send_eligibility(ARRAY[
    ROW(7, %L, 'sms', '+14155550101', '+15005550006', NULL, 'transactional', NULL),
    ROW(3, %L, 'sms', '+14155550100', '+15005550006', NULL, 'transactional', NULL),
    ROW(5, %L, 'sms', '+14155550109', '+15005550006', NULL, 'transactional', NULL)]::private.send_candidate[], now())$$,
    :'t', :'t', :'t'),
  $$VALUES (3, true, 0), (5, false, 2), (7, false, 1)$$, 'a batch: one answer per candidate, by index');
SELECT is((SELECT count(*)::int FROM private.send_eligibility('{}', now())), 0, 'an empty batch: no answer');
SELECT is(pg_temp.verdict(:'t', 'someone@example.com', 'email'), 'eligible', 'emails are addresses like any other');

-- Consent events rank in the order Hermes recorded them, not by the caller's
-- occurred_at (evidence): an opt-in dated ahead (up to 5 minutes is accepted) does not
-- outrank a STOP recorded after it -- before, it did, forever.
SELECT pg_temp.opt(:'t', 'opt_in', '+14155550111',
                   jsonb_build_object('channel', 'sms', 'occurred_at', now() + interval '4 minutes')) ->> 'status' AS fa \gset
SELECT pg_temp.opt(:'t', 'opt_out', '+14155550111', '{"channel": "sms", "source": "keyword"}') ->> 'status' AS fb \gset
SELECT is(pg_temp.verdict(:'t', '+14155550111'), 'opted_out', 'a STOP recorded after a future-dated opt-in wins');
SELECT is((SELECT status FROM api.consent_state s WHERE s.address = '+14155550111'), 'opted_out',
  'and the read API says opted_out');
SELECT is((SELECT e.next_allowed_at FROM private.check_send_eligibility(:'t', 'sms', '+14155550111') e), NULL::timestamptz,
  'refused, not deferred until the opt-in''s date');
-- An opt-in recorded after the STOP lifts it, whatever occurred_at it claims.
SELECT pg_temp.opt(:'t', 'opt_in', '+14155550111',
                   jsonb_build_object('channel', 'sms', 'occurred_at', now() - interval '1 day')) ->> 'status' AS fc \gset
SELECT is(pg_temp.verdict(:'t', '+14155550111'), 'eligible', 'an opt-in recorded after the STOP lifts it');

SELECT * FROM finish();
ROLLBACK;
