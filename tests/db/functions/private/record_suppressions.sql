-- private.record_suppressions and the derived app.suppressions (private.tg_suppressions,
-- private.suppressions_from_ledger, private.rebuild_suppressions): bulk adds and
-- removals, set-based, per-item refusals, an append-only ledger.
BEGIN;
\ir ../../helpers.psql
SELECT plan(21);

SELECT (pg_temp.new_tenant('Lists Co') -> 'tenant' ->> 'id') AS t \gset
CREATE FUNCTION pg_temp.listed(p_tenant uuid) RETURNS TABLE (address text, list text) LANGUAGE sql AS $$
  SELECT address, list FROM app.suppressions WHERE tenant_id IS NOT DISTINCT FROM p_tenant ORDER BY 1, 2 $$;
CREATE FUNCTION pg_temp.cache_is_ledger() RETURNS boolean LANGUAGE sql AS $$
  SELECT NOT EXISTS ((SELECT * FROM app.suppressions EXCEPT SELECT * FROM private.suppressions_from_ledger())
                     UNION ALL
                     (SELECT * FROM private.suppressions_from_ledger() EXCEPT SELECT * FROM app.suppressions))
$$;

SELECT max(id) AS last_audit FROM app.audit_log \gset
SELECT is(private.record_suppressions(:'t', NULL, 'add', 'do_not_contact',
            '["+14155550100", {"address": "Someone@Example.com", "reason": "asked by phone"}, "bad", 42, "+14155550100"]',
            'list from legal'),
  '{"list": "do_not_contact", "action": "add", "recorded": 3, "refused": [
     {"index": 2, "code": "invalid_address", "detail": "Not an E.164 phone number, an email address or a push token: bad."},
     {"index": 3, "code": "invalid_address", "detail": "Not an E.164 phone number, an email address or a push token: null."}]}'::jsonb,
  'adds strings and objects, refuses what is not an address, item by item');
SELECT results_eq($$SELECT * FROM pg_temp.listed((SELECT id FROM app.tenants WHERE name = 'Lists Co'))$$,
  $$VALUES ('+14155550100', 'do_not_contact'), ('someone@example.com', 'do_not_contact')$$,
  'two addresses on the list (one given twice), canonical');
SELECT results_eq($$SELECT reason FROM app.suppressions ORDER BY address$$,
  $$VALUES ('list from legal'), ('asked by phone')$$, 'an item''s reason, else the call''s');
SELECT is((SELECT count(*)::int FROM app.suppression_events), 3, 'three ledger rows');
SELECT results_eq(format('SELECT action, target_id, details FROM app.audit_log WHERE id > %s', :last_audit),
  $$VALUES ('suppression.add', 'do_not_contact', '{"recorded": 3, "refused": 2}'::jsonb)$$, 'one audit row');

-- Another list is another row; removal takes the address off that list only.
SELECT private.record_suppressions(:'t', NULL, 'add', 'litigator', '["+14155550100"]') IS NOT NULL AS a \gset
SELECT private.record_suppressions(:'t', NULL, 'remove', 'do_not_contact', '["+14155550100", "+14155550199"]') IS NOT NULL AS b \gset
SELECT results_eq($$SELECT * FROM pg_temp.listed((SELECT id FROM app.tenants WHERE name = 'Lists Co'))$$,
  $$VALUES ('+14155550100', 'litigator'), ('someone@example.com', 'do_not_contact')$$,
  'removed from do_not_contact, still a litigator; removing an unlisted address changes nothing');
SELECT ok(pg_temp.cache_is_ledger(), 'the cache equals the ledger');
-- Re-adding after a removal lists it again, with the new event.
SELECT private.record_suppressions(:'t', NULL, 'add', 'do_not_contact', '["+14155550100"]', 'again') IS NOT NULL AS c \gset
SELECT results_eq($$SELECT reason FROM app.suppressions WHERE address = '+14155550100' AND list = 'do_not_contact'$$,
  $$VALUES ('again')$$, 're-added');
-- Add and remove in one statement: the later event wins.
INSERT INTO app.suppression_events (tenant_id, address, address_hash, list, action, source)
VALUES (:'t', '+14155550111', private.address_hash('+14155550111'), 'complaint', 'add', 'api'),
       (:'t', '+14155550111', private.address_hash('+14155550111'), 'complaint', 'remove', 'api'),
       (:'t', '+14155550112', private.address_hash('+14155550112'), 'complaint', 'remove', 'api'),
       (:'t', '+14155550112', private.address_hash('+14155550112'), 'complaint', 'add', 'api');
SELECT results_eq($$SELECT address FROM app.suppressions WHERE list = 'complaint'$$, $$VALUES ('+14155550112')$$,
  'within one statement the later event of an address decides');
SELECT ok(pg_temp.cache_is_ledger(), 'still equal to the ledger');

-- Global lists: no tenant.
SELECT private.record_suppressions(NULL, NULL, 'add', 'litigator', '["+14155550120"]') IS NOT NULL AS g \gset
SELECT results_eq('SELECT * FROM pg_temp.listed(NULL)', $$VALUES ('+14155550120', 'litigator')$$, 'a global entry');

-- Refusals of the whole call.
SELECT is(ARRAY[pg_temp.problem($$SELECT private.record_suppressions(NULL, NULL, 'flip', 'litigator', '[]')$$),
                pg_temp.problem($$SELECT private.record_suppressions(NULL, NULL, 'add', 'erasure', '[]')$$),
                pg_temp.problem($$SELECT private.record_suppressions(NULL, NULL, 'add', 'friends', '[]')$$),
                pg_temp.problem($$SELECT private.record_suppressions(NULL, NULL, 'add', 'litigator', '{"a": 1}')$$),
                pg_temp.problem($$SELECT private.record_suppressions(NULL, NULL, 'add', 'litigator', '[]', repeat('x', 501))$$)],
  ARRAY['HM422 invalid_action', 'HM422 invalid_list', 'HM422 invalid_list', 'HM422 invalid_entries', 'HM422 invalid_reason'],
  'bad action, list (erasure tombstones are not written here), entries, reason');
SELECT is(pg_temp.problem(format($$SELECT private.record_suppressions(NULL, NULL, 'add', 'litigator', %L)$$,
            (SELECT jsonb_agg('+1415555' || lpad(i::text, 4, '0')) FROM generate_series(0, 10000) i))),
  'HM413 too_many_entries', 'more than 10,000 addresses: HM413 too_many_entries');
SELECT is(private.record_suppressions(:'t', NULL, 'add', 'do_not_contact',
            (SELECT jsonb_agg('+1415556' || lpad(i::text, 4, '0')) FROM generate_series(0, 9999) i)) -> 'recorded',
  '10000'::jsonb, '10,000 in one call');
SELECT is((SELECT count(*)::int FROM app.suppressions WHERE tenant_id = :'t' AND list = 'do_not_contact'), 10002,
  'all listed');

-- The ledger is append-only.
SELECT throws_ok($$UPDATE app.suppression_events SET action = 'remove'$$, 'HM405', NULL, 'UPDATE suppression_events: HM405');
SELECT throws_ok($$DELETE FROM app.suppression_events$$, 'HM405', NULL, 'DELETE suppression_events: HM405');
SELECT throws_ok($$TRUNCATE app.suppression_events$$, 'HM405', NULL, 'TRUNCATE suppression_events: HM405');

-- Rebuild.
CREATE TEMP TABLE cache_before AS SELECT * FROM app.suppressions;
DELETE FROM app.suppressions WHERE list = 'litigator';
SELECT ok(NOT pg_temp.cache_is_ledger(), 'a drift is told apart');
SELECT is(private.rebuild_suppressions(), (SELECT count(*) FROM cache_before), 'rebuild returns the number of entries');
SELECT set_eq('SELECT * FROM app.suppressions', 'SELECT * FROM cache_before', 'and restores exactly what the trigger had built');

SELECT * FROM finish();
ROLLBACK;
