-- The compliance import kinds' MERGE: a suppression import lists its addresses (through
-- private.record_suppressions), a contact-history import seeds the cooldown store
-- (later contacts win, older ones change nothing), rows without an address rejected.
BEGIN;
\ir ../../helpers.psql
SELECT plan(14);

SELECT (pg_temp.new_tenant('Legacy Co') -> 'tenant' ->> 'id') AS t \gset

CREATE FUNCTION pg_temp.import(p_tenant uuid, p_kind text, p_mapping jsonb, p_rows jsonb)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  v_id bigint;
BEGIN
  INSERT INTO app.imports (tenant_id, kind, status, parser_version, rows_total, mapping)
  VALUES (p_tenant, p_kind, 'merging', 'test-1', jsonb_array_length(p_rows), p_mapping) RETURNING id INTO v_id;
  INSERT INTO app.import_extractions (import_id, row_number, tenant_id, parser_version, phones, emails,
                                      vertical, observed_at, sender, rejected)
  SELECT v_id, e.n, p_tenant, 'test-1', coalesce(r.phones, '{}'), coalesce(r.emails, '{}'), r.vertical,
         coalesce(r.observed_at, now()), r.sender, r.rejected
    FROM jsonb_array_elements(p_rows) WITH ORDINALITY e(item, n)
   CROSS JOIN LATERAL jsonb_populate_record(NULL::app.import_extractions, e.item) r;
  -- the worker's loop: a part a transaction while the merge answers partial
  WHILE app.run_import_merge(v_id) ->> 'action' = 'partial' LOOP
  END LOOP;
  RETURN v_id;
END
$$;

SELECT pg_temp.import(:'t', 'suppression', '{"list": "litigator"}',
  '[{"phones": ["+14155550101", "+14155550102"]}, {"emails": ["a@example.com"]}, {"phones": []}, {"rejected": "ragged_row"}]') AS s1 \gset
SELECT set_eq(format($$SELECT address, list, source FROM app.suppression_events WHERE tenant_id = %L$$, :'t'),
  $$VALUES ('+14155550101', 'litigator', 'import'), ('+14155550102', 'litigator', 'import'), ('a@example.com', 'litigator', 'import')$$,
  'a suppression import puts its addresses on its list, as the import');
SELECT is((SELECT eligible FROM private.check_send_eligibility(:'t', 'sms', '+14155550102', NULL, NULL, 'transactional')),
  false, 'and they are no longer eligible');
SELECT results_eq(format('SELECT row_number, reason FROM app.import_errors WHERE import_id = %s ORDER BY 1', :s1),
  $$VALUES (3::bigint, 'no_address'), (4, 'ragged_row')$$, 'rows without an address, and PARSE''s rejections, are errors');
SELECT results_eq(format('SELECT status, rows_rejected FROM app.imports WHERE id = %s', :s1),
  $$VALUES ('completed', 2::bigint)$$, 'and counted');

SELECT pg_temp.import(:'t', 'contact_history', '{}',
  '[{"phones": ["+14155550111"], "vertical": "solar", "observed_at": "2026-11-01T00:00:00Z", "sender": "+15005550006"},
    {"phones": ["+14155550111"], "vertical": "solar", "observed_at": "2026-11-20T00:00:00Z"},
    {"emails": ["b@example.com"], "observed_at": "2026-10-01T00:00:00Z"}]') AS h1 \gset
SELECT set_eq(format($$SELECT vertical, last_contact_at, source FROM app.contact_history WHERE tenant_id = %L$$, :'t'),
  $$VALUES ('solar', '2026-11-20T00:00:00Z'::timestamptz, 'import'), ('*', '2026-10-01T00:00:00Z', 'import')$$,
  'a contact-history import keeps the latest contact per address and vertical (unknown: *)');
SELECT pg_temp.import(:'t', 'contact_history', '{}',
  '[{"phones": ["+14155550111"], "vertical": "solar", "observed_at": "2026-01-01T00:00:00Z"}]') AS h2 \gset
SELECT is((SELECT last_contact_at FROM app.contact_history WHERE tenant_id = :'t' AND vertical = 'solar'),
  '2026-11-20T00:00:00Z'::timestamptz, 'an older contact changes nothing');
SELECT ok('cooldown' IN (SELECT r ->> 'code' FROM private.check_send_eligibility(:'t', 'sms', '+14155550111', NULL, 'solar',
                                                                                  'marketing', '2026-11-25T12:00:00Z') c,
                                                  jsonb_array_elements(c.reasons) r),
  'the seeded contact puts the address in cooldown');
SELECT is((SELECT count(*)::int FROM app.identities WHERE tenant_id = :'t'), 0, 'and neither kind creates identities');

-- Addresses the stores cannot key are errors; the row's valid ones still go in.
SELECT pg_temp.import(:'t', 'suppression', '{"list": "do_not_contact"}',
  '[{"emails": ["john@mail_srv.com"]}, {"emails": ["ok@example.com", "<a@x.com>"]}]') AS s2 \gset
SELECT results_eq(format('SELECT row_number, reason, detail FROM app.import_errors WHERE import_id = %s ORDER BY 1', :s2),
  $$VALUES (1::bigint, 'invalid_address', 'not an E.164 number or an email address: john@mail_srv.com'),
           (2, 'invalid_address', 'not an E.164 number or an email address: <a@x.com> (the row''s other addresses were taken)')$$,
  'invalid addresses are rejected by name, never skipped silently');
SELECT is((SELECT array_agg(address) FROM app.suppression_events WHERE tenant_id = :'t' AND list = 'do_not_contact'),
  ARRAY['ok@example.com'], 'the valid one is listed');

-- Large lists merge in parts of at most 5,000 addresses, a transaction each.
INSERT INTO app.imports (tenant_id, kind, status, parser_version, rows_total, mapping)
VALUES (:'t', 'suppression', 'merging', 'test-1', 12000, '{"list": "do_not_contact"}') RETURNING id AS big \gset
INSERT INTO app.import_extractions (import_id, row_number, tenant_id, parser_version, phones, emails, observed_at)
SELECT :big, n, :'t', 'test-1', ARRAY['+1415' || lpad(n::text, 7, '0')], '{}', now() FROM generate_series(1, 12000) n;
SELECT is(app.run_import_merge(:big) ->> 'action', 'partial', 'a 12,000-address list: a first part');
SELECT results_eq(format('SELECT status, merged_through FROM app.imports WHERE id = %s', :big),
  $$VALUES ('merging', 5000::bigint)$$, 'of 5,000 addresses; the import is still merging');
SELECT is(ARRAY[app.run_import_merge(:big) ->> 'action', app.run_import_merge(:big) ->> 'action'], ARRAY['partial', 'merged'],
  'then a second part, and a third that completes it');
SELECT results_eq(format($$SELECT status, merged_through, (SELECT count(*) FROM app.suppression_events
                                                            WHERE tenant_id = %L AND address LIKE '+141500%%')
                           FROM app.imports WHERE id = %s$$, :'t', :big),
  $$VALUES ('completed', 12000::bigint, 12000::bigint)$$, 'every address listed once');

SELECT * FROM finish();
ROLLBACK;
