-- private.merge_import (and the RESOLVE keys private.property_hash / identity_hash): the
-- identity graph's merge rules -- re-importing changes nothing, enrichment creates no
-- identity, namesakes at two addresses stay two, (confidence, recency) precedence,
-- provenance kept, bad rows recorded, phones fan out.
BEGIN;
\ir ../../helpers.psql
SELECT plan(34);

SELECT (pg_temp.new_tenant('Graph Co') -> 'tenant' ->> 'id') AS t \gset
SELECT (pg_temp.new_tenant('Other Co') -> 'tenant' ->> 'id') AS u \gset

-- An import of kind p_kind whose PARSE produced p_rows (extraction records as JSON,
-- row_number from their order), merged; returns its id.
CREATE FUNCTION pg_temp.import(p_tenant uuid, p_kind text, p_rows jsonb,
                               p_observed timestamptz DEFAULT now())
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  v_id bigint;
BEGIN
  INSERT INTO app.imports (tenant_id, kind, status, parser_version, rows_total)
  VALUES (p_tenant, p_kind, 'merging', 'test-1', jsonb_array_length(p_rows)) RETURNING id INTO v_id;
  INSERT INTO app.import_extractions
    (import_id, row_number, tenant_id, parser_version, first_name, last_name, name_norm, phones, emails,
     line1, city, region, postal_code, external_system, external_id, vertical, confidence, observed_at, rejected)
  SELECT v_id, e.n, p_tenant, 'test-1', r.first_name, r.last_name,
         coalesce(r.name_norm, lower(concat_ws(' ', r.first_name, r.last_name))),
         coalesce(r.phones, '{}'), coalesce(r.emails, '{}'), r.line1, r.city, r.region, r.postal_code,
         r.external_system, r.external_id, r.vertical, coalesce(r.confidence, 1), p_observed, r.rejected
    FROM jsonb_array_elements(p_rows) WITH ORDINALITY e(item, n)
   CROSS JOIN LATERAL jsonb_populate_record(NULL::app.import_extractions, e.item) r;
  PERFORM private.merge_import(v_id);
  RETURN v_id;
END
$$;
CREATE FUNCTION pg_temp.graph(p_tenant uuid) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object(
    'identities', (SELECT jsonb_agg(to_jsonb(i) - 'updated_at' ORDER BY i.identity_hash) FROM app.identities i WHERE i.tenant_id = p_tenant),
    'phones', (SELECT jsonb_agg(to_jsonb(x) ORDER BY x.identity_id, x.phone_id) FROM app.identity_phones x WHERE x.tenant_id = p_tenant),
    'emails', (SELECT jsonb_agg(to_jsonb(x) ORDER BY x.identity_id, x.email_id) FROM app.identity_emails x WHERE x.tenant_id = p_tenant),
    'properties', (SELECT jsonb_agg(to_jsonb(x) ORDER BY x.identity_id, x.property_id) FROM app.identity_properties x WHERE x.tenant_id = p_tenant),
    'leads', (SELECT jsonb_agg(to_jsonb(x) ORDER BY x.id) FROM app.leads x WHERE x.tenant_id = p_tenant),
    'refs', (SELECT jsonb_agg(to_jsonb(x) ORDER BY x.system, x.external_id) FROM app.external_refs x WHERE x.tenant_id = p_tenant))
$$;

-- Keys.
SELECT is(private.property_hash('12  Main St', 'Boston', 'MA', '02101', 'US'),
          private.property_hash('12 main st', ' BOSTON ', 'ma', '02101', 'us'), 'property_hash ignores case and spacing');
SELECT is(private.property_hash('', 'Boston', 'MA', '02101', 'US'), NULL, 'no street line, no property');
SELECT isnt(private.identity_hash('ada lovelace', private.property_hash('1 A St', 'X', 'MA', '1', 'US'), '{}', '{}'),
            private.identity_hash('ada lovelace', private.property_hash('2 B St', 'X', 'MA', '1', 'US'), '{}', '{}'),
            'one name at two properties: two keys');
SELECT is(private.identity_hash('ada lovelace', NULL, '{}', '{}'), NULL, 'a name alone is no key');
SELECT is(private.identity_hash('', NULL, '{+14155550123}', '{}'), NULL, 'no name, no key');

-- A universe file: Ada twice at one address (one person, two phones), a namesake Ada
-- elsewhere, Bob with no address but a phone, a row PARSE rejected, a row with no key.
SELECT $$[
  {"first_name": "Ada", "last_name": "Lovelace", "phones": ["+14155550101", "+14155550101"], "emails": ["ada@example.com"],
   "line1": "1 Main St", "city": "Boston", "region": "MA", "postal_code": "02101", "external_system": "crm", "external_id": "A1", "vertical": "solar"},
  {"first_name": "ADA", "last_name": "LOVELACE", "phones": ["+14155550102"], "line1": "1 main st", "city": "boston", "region": "MA", "postal_code": "02101", "vertical": "solar", "confidence": 0.5},
  {"first_name": "Ada", "last_name": "Lovelace", "phones": ["+14155550103"], "line1": "9 Elm Rd", "city": "Austin", "region": "TX", "postal_code": "78701"},
  {"first_name": "Bob", "last_name": "Byron", "phones": ["+14155550104", "not-e164"]},
  {"first_name": "Carl", "rejected": "bad_phone"},
  {"first_name": "Dee", "last_name": "Nokey"}
]$$ AS file1 \gset
SELECT pg_temp.import(:'t', 'universe', :'file1') AS i1 \gset

SELECT results_eq(format($$SELECT rows_total, rows_rejected, identities_created, identities_matched FROM app.imports WHERE id = %s$$, :i1),
  $$VALUES (6::bigint, 2::bigint, 3::bigint, 0::bigint)$$, 'counts: 6 rows, 2 rejected, 3 people created');
SELECT results_eq(format($$SELECT row_number, reason FROM app.import_errors WHERE import_id = %s ORDER BY 1$$, :i1),
  $$VALUES (5::bigint, 'bad_phone'), (6::bigint, 'no_identity_key')$$, 'each rejected row with its number and reason');
SELECT is((SELECT count(*)::int FROM app.identities WHERE tenant_id = :'t' AND name_norm = 'ada lovelace'), 2,
  'two people with one name at different addresses stay two');
SELECT results_eq($$SELECT first_name, name_confidence::numeric, name_row_number FROM app.identities i
                     JOIN app.properties p ON p.id = i.property_id WHERE p.city = 'Boston'$$,
  $$VALUES ('Ada', 1::numeric, 1::bigint)$$, 'within a file the row with the highest confidence names the person');
SELECT results_eq($$SELECT n.e164, x.row_number, x.source FROM app.identity_phones x JOIN app.phone_numbers n ON n.id = x.phone_id
                     JOIN app.identities i ON i.id = x.identity_id JOIN app.properties p ON p.id = i.property_id
                    WHERE p.city = 'Boston' ORDER BY 1$$,
  $$VALUES ('+14155550101', 1::bigint, 'import:universe'), ('+14155550102', 2::bigint, 'import:universe')$$,
  'phones fan out to rows, deduplicated, each link with the row that showed it');
SELECT is((SELECT count(*)::int FROM app.identity_phones x JOIN app.identities i ON i.id = x.identity_id WHERE i.name_norm = 'bob byron'), 1,
  'a value that is not E.164 is no phone');
SELECT is((SELECT count(*)::int FROM app.leads WHERE tenant_id = :'t'), 1, 'one lead per (identity, vertical, property)');
SELECT is((SELECT count(*)::int FROM app.identities WHERE tenant_id = :'u'), 0, 'nothing lands in another tenant');

-- Re-importing the same file changes nothing.
SELECT pg_temp.graph(:'t') AS g1 \gset
SELECT pg_temp.import(:'t', 'universe', :'file1') AS i2 \gset
SELECT is(pg_temp.graph(:'t'), :'g1'::jsonb, 're-importing the same file changes nothing in the graph');
SELECT results_eq(format($$SELECT identities_created, identities_matched FROM app.imports WHERE id = %s$$, :i2),
  $$VALUES (0::bigint, 3::bigint)$$, 'the re-import matched all three and created none');
SELECT is(private.merge_import(:i2) ->> 'identities_created', '0', 'merging an import again (a resumed job) adds nothing');
SELECT is(pg_temp.graph(:'t'), :'g1'::jsonb, '... and changes nothing');

-- Enrichment never creates; it adds to people it finds (by external id, or by key).
SELECT pg_temp.import(:'t', 'enrichment', $$[
  {"first_name": "Eve", "last_name": "Newcomer", "phones": ["+14155550199"], "line1": "5 Oak Ave", "city": "Miami", "region": "FL", "postal_code": "33101"},
  {"first_name": "Someone", "last_name": "Else", "external_system": "crm", "external_id": "A1", "emails": ["ada.l@example.org"]},
  {"external_system": "crm", "external_id": "A1", "phones": ["+14155550111"]}
]$$) AS i3 \gset
SELECT is((SELECT count(*)::int FROM app.identities WHERE tenant_id = :'t'), 3, 'enrichment creates no identity');
SELECT results_eq(format($$SELECT rows_unmatched, identities_created, identities_matched FROM app.imports WHERE id = %s$$, :i3),
  $$VALUES (1::bigint, 0::bigint, 1::bigint)$$, 'the unknown person is counted unmatched');
SELECT is((SELECT array_agg(e.address ORDER BY e.address) FROM app.identity_emails x JOIN app.email_addresses e ON e.id = x.email_id
            JOIN app.external_refs r ON r.identity_id = x.identity_id WHERE r.external_id = 'A1'),
  ARRAY['ada.l@example.org', 'ada@example.com'], 'an external id matches before the name: the email joins Ada');
SELECT is((SELECT source FROM app.identity_emails x JOIN app.email_addresses e ON e.id = x.email_id WHERE e.address = 'ada.l@example.org'),
  'import:enrichment', 'provenance: the link says which import kind added it');
SELECT is((SELECT count(*)::int FROM app.identity_phones x JOIN app.phone_numbers n ON n.id = x.phone_id
            JOIN app.external_refs r ON r.identity_id = x.identity_id WHERE r.external_id = 'A1' AND n.e164 = '+14155550111'),
  1, 'a row with no name but a known external id enriches that person');

-- Only valid values make a key; rows sharing a new external id are one person.
SELECT pg_temp.import(:'t', 'universe', $$[
  {"first_name": "Gus", "last_name": "Garbage", "phones": ["(415) 555-0100", ""]},
  {"first_name": "Hal", "last_name": "Twice", "line1": "3 Pine Dr", "city": "Denver", "region": "CO", "postal_code": "80201", "external_system": "crm", "external_id": "H9"},
  {"first_name": "Hal", "last_name": "Twice", "line1": "4 Cedar Dr", "city": "Denver", "region": "CO", "postal_code": "80202", "external_system": "crm", "external_id": "H9"}
]$$) AS i7 \gset
SELECT results_eq(format($$SELECT row_number, reason FROM app.import_errors WHERE import_id = %s$$, :i7),
  $$VALUES (1::bigint, 'no_identity_key')$$, 'phones that are not E.164 are no key: the row is rejected');
SELECT is((SELECT count(*)::int FROM app.identities WHERE name_norm = 'hal twice'), 1,
  'two rows with one new external id are one person, whatever their addresses');
SELECT is((SELECT count(*)::int FROM app.identity_properties x JOIN app.identities i ON i.id = x.identity_id
            WHERE i.name_norm = 'hal twice'), 2, '... with both properties');
SELECT pg_temp.graph(:'t') AS g2 \gset
SELECT pg_temp.import(:'t', 'universe', $$[
  {"first_name": "Hal", "last_name": "Twice", "line1": "3 Pine Dr", "city": "Denver", "region": "CO", "postal_code": "80201", "external_system": "crm", "external_id": "H9"},
  {"first_name": "Hal", "last_name": "Twice", "line1": "4 Cedar Dr", "city": "Denver", "region": "CO", "postal_code": "80202", "external_system": "crm", "external_id": "H9"}
]$$) AS i8 \gset
SELECT is(pg_temp.graph(:'t'), :'g2'::jsonb, 'and importing them again changes nothing');

-- Precedence of scalars: (confidence, recency).
SELECT pg_temp.import(:'t', 'universe', $$[{"first_name": "Bobby", "last_name": "Byron", "name_norm": "bob byron", "phones": ["+14155550104"], "confidence": 0.4}]$$,
                      now() + interval '1 day') AS i4 \gset
SELECT is((SELECT first_name FROM app.identities WHERE name_norm = 'bob byron'), 'Bob', 'a newer but less confident value does not win');
SELECT pg_temp.import(:'t', 'universe', $$[{"first_name": "Robert", "last_name": "Byron", "name_norm": "bob byron", "phones": ["+14155550104"], "confidence": 1}]$$,
                      now() + interval '2 days') AS i5 \gset
SELECT results_eq($$SELECT first_name, name_import_id FROM app.identities WHERE name_norm = 'bob byron'$$,
  format($$VALUES ('Robert', %s::bigint)$$, :i5), 'an as confident, newer value wins, and records where it came from');
SELECT pg_temp.import(:'t', 'universe', $$[{"first_name": "Rob", "last_name": "Byron", "name_norm": "bob byron", "phones": ["+14155550104"], "confidence": 1}]$$,
                      now() - interval '1 day') AS i6 \gset
SELECT is((SELECT first_name FROM app.identities WHERE name_norm = 'bob byron'), 'Robert', 'an as confident, older value does not');
SELECT pg_temp.import(:'t', 'enrichment', $$[{"external_system": "crm", "external_id": "H9", "emails": ["hal@example.com"], "name_norm": ""}]$$,
                      now() + interval '3 days') AS i9 \gset
SELECT results_eq($$SELECT i.first_name, e.address FROM app.identities i
                      JOIN app.identity_emails ie ON ie.identity_id = i.id
                      JOIN app.email_addresses e ON e.id = ie.email_id
                     WHERE ie.import_id = $$ || :i9,
  $$VALUES ('Hal', 'hal@example.com')$$,
  'a newer row without a name (an enrichment by external id) adds its email and leaves the name alone');
SELECT is((SELECT created_import_id FROM app.identities WHERE name_norm = 'bob byron'), :i1::bigint,
  'provenance: the identity still names the import that created it');

-- The read API: a tenant's integrator sees its imports and errors, no one else's.
SELECT pg_temp.import(:'u', 'universe', $$[{"first_name": "Ursula", "rejected": "bad_phone"}]$$) AS iu \gset
SET LOCAL ROLE hermes_integrator;
SELECT set_config('hermes.tenant_id', :'t', true) IS NOT NULL AS set_t \gset
SELECT results_eq(format($$SELECT rows_total, rows_rejected, identities_created FROM api.imports WHERE id = %s$$, :i1),
  $$VALUES (6::bigint, 2::bigint, 3::bigint)$$, 'api.imports shows the counts');
SELECT is((SELECT count(*)::int FROM api.import_errors WHERE import_id = :iu), 0, 'not another tenant''s errors');
SELECT is((SELECT count(*)::int FROM api.imports WHERE id = :iu), 0, 'nor its imports');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
