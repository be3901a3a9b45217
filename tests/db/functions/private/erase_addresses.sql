-- private.erase_addresses / app.erase_addresses: a person's addresses forgotten by a
-- tenant -- personal data redacted everywhere, the ledgers' rows kept without it, a
-- hashed tombstone that keeps them unmessaged; the ledgers stay append-only otherwise.
BEGIN;
\ir ../../helpers.psql
SELECT plan(39);

SELECT pg_temp.new_tenant('Forget Co') AS r \gset
SELECT (:'r'::jsonb) -> 'tenant' ->> 'id' AS t, (:'r'::jsonb) -> 'api_key' ->> 'token' AS token \gset
SELECT (pg_temp.new_tenant('Other Co') -> 'tenant' ->> 'id') AS u \gset
-- Their history: a delivered message with a receipt, a queued one, consent, a list, an inbound STOP.
SELECT pg_temp.handed_off(:'t', 'SM-forget', 'delivered', 'hello Ada') AS a1 \gset
SELECT app.apply_receipts() IS NOT NULL AS applied \gset
SELECT private.submit_message(:'t', NULL, '{"to": "+14155550123", "body": "still queued"}', 'key-ada') #>> '{message,id}' AS m2 \gset
SELECT private.record_suppressions(:'t', NULL, 'add', 'complaint', '["+14155550123"]', 'she called') IS NOT NULL AS s \gset
SELECT app.record_inbound('twilio', :'t', 'SMin-ada', '+14155550123', '+15005550006', 'STOP') IS NOT NULL AS i \gset
SELECT private.submit_message(:'u', NULL, '{"to": "+14155550123", "body": "other tenant"}') #>> '{message,id}' AS mu \gset
-- And in the identity graph: an imported file whose first row holds the number.
INSERT INTO app.imports (tenant_id, kind, status, parser_version, rows_total, header)
VALUES (:'t', 'universe', 'merging', 'test-1', 2, '{first_name,phone1,phone2}') RETURNING id AS imp \gset
INSERT INTO app.file_rows (import_id, row_number, tenant_id, payload) VALUES
  (:imp, 1, :'t', '["Ada", "(415) 555-0123", "415 555 0999"]'), (:imp, 2, :'t', '["Bob", "415 555 0777", ""]'),
  -- the parser dropped this one's number (an extension): only its raw text holds it
  (:imp, 3, :'t', '["Cy", "", "415.555.0123 ext 9"]');
UPDATE app.imports SET rows_total = 3 WHERE id = :imp;
INSERT INTO app.import_extractions (import_id, row_number, tenant_id, parser_version, first_name, name_norm, phones, observed_at,
                                    rejected, rejected_detail)
VALUES (:imp, 1, :'t', 'test-1', 'Ada', 'ada', '{+14155550123,+14155550999}', now(), NULL, NULL),
       (:imp, 2, :'t', 'test-1', 'Bob', 'bob', '{+14155550777}', now(), NULL, NULL),
       (:imp, 3, :'t', 'test-1', 'Cy', 'cy', '{}', now(), 'no_identity_key', '3: phone ''415.555.0123 ext 9'' dropped');
SELECT app.run_import_merge(:imp) IS NOT NULL AS merged \gset
-- An identity keyed on the number (no property): the key cannot give it back afterwards.
INSERT INTO app.identities (id, tenant_id, identity_hash, name_norm, name_confidence, name_observed_at, name_import_id,
                            name_row_number, created_import_id)
VALUES ('0190a000-0000-7000-8000-00000000e1a5', :'t', private.identity_hash('dee', NULL, '{+14155550123}', '{}'), 'dee',
        1, now(), :imp, 9, :imp);
INSERT INTO app.identity_phones (tenant_id, identity_id, phone_id, confidence, source, import_id, row_number)
SELECT :'t', '0190a000-0000-7000-8000-00000000e1a5', p.id, 1, 'test', :imp, 9
  FROM app.phone_numbers p WHERE p.tenant_id = :'t' AND p.e164 = '+14155550123';

-- The cooldown and content-dedup stores know them (by hash).
INSERT INTO app.contact_history (tenant_id, address_hash, vertical, last_contact_at)
VALUES (:'t', private.address_hash('+14155550123'), '*', now());
INSERT INTO app.recent_contents (tenant_id, address_hash, content_hash, last_at, message_id)
VALUES (:'t', private.address_hash('+14155550123'), sha256('hello Ada'), now(), :'m2');

SELECT app.erase_addresses(:'token', '["+14155550123", "nope"]') AS e \gset
SELECT is((SELECT count(*)::int FROM app.contact_history WHERE tenant_id = :'t')
          + (SELECT count(*)::int FROM app.recent_contents WHERE tenant_id = :'t'), 0,
  'the cooldown and content-dedup stores forget them');
SELECT set_eq(format('SELECT e164 FROM app.phone_numbers WHERE tenant_id = %L', :'t'),
  $$VALUES ('+14155550999'), ('+14155550777')$$, 'the graph forgets the number (the person''s other number stays)');
SELECT is((SELECT count(*)::int FROM app.identity_phones WHERE tenant_id = :'t'), 2, 'and its link');
SELECT results_eq(format('SELECT row_number, payload, error IS NOT NULL FROM app.file_rows WHERE import_id = %s ORDER BY 1', :imp),
  $$VALUES (1::bigint, '[]'::jsonb, true), (2, '["Bob", "415 555 0777", ""]', false), (3, '[]', true)$$,
  'the landed rows that held it are emptied -- also one whose number only the raw text holds; the others are untouched');
SELECT is((SELECT count(*)::int FROM app.import_errors WHERE import_id = :imp AND detail LIKE '%555.0123%')
          + (SELECT count(*)::int FROM app.import_extractions WHERE import_id = :imp AND rejected_detail LIKE '%555.0123%'), 0,
  'no rejection detail quotes it any more');
SELECT isnt((SELECT identity_hash FROM app.identities WHERE id = '0190a000-0000-7000-8000-00000000e1a5'),
  private.identity_hash('dee', NULL, '{+14155550123}', '{}'), 'an identity keyed on the number is re-keyed');
SELECT ok(private.holds_erased('call (415) 555-0123!', '{+14155550123}') AND private.holds_erased('+1 415 555 0123', '{+14155550123}')
          AND private.holds_erased('Mail ADA@Example.com', '{ada@example.com}') AND NOT private.holds_erased('415 555 0124', '{+14155550123}')
          AND NOT private.holds_erased('0123', '{+14155550123}'),
  'holds_erased: the number in any format, the email in any case; not another number, not a few digits');
SELECT results_eq(format('SELECT first_name, phones FROM app.import_extractions WHERE import_id = %s ORDER BY row_number', :imp),
  $$VALUES (NULL::text, '{}'::text[]), ('Bob', '{+14155550777}'), (NULL, '{}')$$, 'so are their extractions');
SELECT is((:'e'::jsonb) #>> '{counts,import_rows}', '2', 'the counts say so');
SELECT is((:'e'::jsonb) -> 'erased', '1'::jsonb, 'one address erased');
SELECT is((:'e'::jsonb) -> 'refused' -> 0 ->> 'code', 'invalid_address', 'what is not an address is refused');
SELECT is((SELECT count(*)::int FROM app.messages WHERE tenant_id = :'t' AND (to_address = '+14155550123' OR body LIKE '%Ada%' OR body = 'still queued')),
  0, 'no message of the tenant names them or keeps a body');
SELECT results_eq(format($$SELECT status, error_code FROM app.messages WHERE id = %L$$, :'m2'),
  $$VALUES ('rejected', 'erased')$$, 'a message still waiting is rejected: it will never go');
SELECT is(pg_temp.attempt_status(pg_temp.attempt_of(:'m2')), 'rejected', 'its attempt too');
SELECT is((SELECT count(*)::int FROM app.idempotency_keys WHERE tenant_id = :'t' AND response::text LIKE '%14155550123%'),
  0, 'replayable answers are redacted');
SELECT is((SELECT count(*)::int FROM app.receipts WHERE tenant_id = :'t' AND payload::text LIKE '%14155550123%'), 0,
  'receipt payloads are redacted');
SELECT is((SELECT count(*)::int FROM app.consent_events WHERE tenant_id = :'t' AND (address IS NOT NULL OR evidence::text LIKE '%STOP%')),
  0, 'consent events keep no address or evidence');
SELECT is((SELECT count(*)::int FROM app.consent_events WHERE tenant_id = :'t'), 1, 'but the event itself is kept');
SELECT is((SELECT count(*)::int FROM app.suppression_events WHERE tenant_id = :'t' AND (address IS NOT NULL OR reason IS NOT NULL)),
  0, 'suppression events keep no address or reason');
SELECT is((SELECT count(*)::int FROM app.inbound_messages WHERE tenant_id = :'t' AND (from_address IS NOT NULL OR body IS NOT NULL)),
  0, 'inbound messages keep no sender or body');
SELECT is((SELECT count(*)::int FROM app.conversations WHERE tenant_id = :'t'), 0, 'their conversation is gone');
SELECT is((SELECT count(*)::int FROM app.consent_state WHERE tenant_id = :'t' AND address IS NOT NULL)
          + (SELECT count(*)::int FROM app.suppressions WHERE tenant_id = :'t' AND address IS NOT NULL), 0,
  'the caches keep no address');
SELECT results_eq(format($$SELECT list, address, address_hash = private.address_hash('+14155550123')
                             FROM app.suppressions WHERE tenant_id = %L AND list = 'erasure'$$, :'t'),
  $$VALUES ('erasure', NULL::text, true)$$, 'a tombstone: the list erasure, only the hash');
SELECT ok(private.submit_message(:'t', NULL, '{"to": "+14155550123", "body": "welcome back?"}') #> '{message,reasons}'
            @> '[{"code": "suppressed", "list": "erasure", "scope": "tenant"}]',
  'a later message to them is refused (suppressed, list erasure)');
SELECT is((SELECT to_address FROM app.messages WHERE id = :'mu'), '+14155550123', 'another tenant''s data is untouched');
SELECT results_eq(format($$SELECT counts ->> 'messages', counts ->> 'consent_events' FROM app.erasures WHERE tenant_id = %L$$, :'t'),
  $$VALUES ('3', '1')$$, 'app.erasures records the erasure with its counts (two messages and the STOP reply)');
-- Issue 19: the provider's copy goes too -- a job that names no one.
SELECT results_eq($$SELECT convert_from(payload, 'UTF8')::jsonb FROM pgqueuer.pgqueuer WHERE entrypoint = 'provider_delete'$$,
  $$VALUES ('{"provider": "twilio", "provider_account_id": null, "environment": "test", "provider_message_id": "SM-forget"}'::jsonb)$$,
  'a provider_delete job for the handed-off message: provider, account, environment, provider message id only');
SELECT results_eq(format($$SELECT to_address, content FROM app.message_attempts WHERE id = %L$$, :'a1'),
  $$VALUES ('[erased]', '{"body": "[erased]", "redacted": "erasure"}'::jsonb)$$, 'the attempt loses recipient and content');
-- A late receipt quoting them: stored redacted, and the message stays erased.
SELECT app.record_receipt('twilio', :'a1', 'SM-forget', 'undelivered', '30003', 'Unreachable: +14155550123',
                          '{"To": "+14155550123", "Body": "hello Ada"}') IS NOT NULL AS late \gset
SELECT results_eq($$SELECT payload, error_message FROM app.receipts WHERE provider_message_id = 'SM-forget' AND provider_status = 'undelivered'$$,
  $$VALUES ('{"redacted": "erasure"}'::jsonb, NULL::text)$$, 'a late receipt for an erased attempt is stored without payload or error text');
SELECT app.apply_receipts() IS NOT NULL AS applied2 \gset
SELECT is((SELECT count(*)::int FROM app.messages m JOIN app.message_attempts a ON a.message_id = m.id
            WHERE a.id = :'a1' AND (m.to_address <> '[erased]' OR m.body <> '[erased]')), 0,
  'settling it copies nothing back into the message');
-- A cascade whose later (email) step goes to the erased address: found by that step.
SELECT private.submit_message(:'t', NULL, '{"channels": [
  {"channel": "sms", "to": "+14155550888", "body": "step one"},
  {"channel": "email", "to": "Later@Example.com", "from": "tests@hermes.example", "subject": "About you", "body": "step two"}]}')
  #>> '{message,id}' AS mc \gset
SELECT app.erase_addresses(:'token', '["LATER@example.com"]') AS e2 \gset
SELECT results_eq(format($$SELECT attempt_no, to_address, status, error_code, content ->> 'body' FROM app.message_attempts
                            WHERE message_id = %L ORDER BY attempt_no$$, :'mc'),
  $$VALUES (1, '+14155550888', 'rejected', 'erased', '[erased]'), (2, '[erased]', 'rejected', 'erased', '[erased]')$$,
  'a cascade is found by its later step''s address: that step loses its recipient, every step its content, none will go');
SELECT results_eq(format($$SELECT to_address, body, status FROM app.messages WHERE id = %L$$, :'mc'),
  $$VALUES ('+14155550888', '[erased]', 'rejected')$$, 'the message loses its body (its current recipient was not erased)');
SELECT is((:'e2'::jsonb) #>> '{counts,messages}', '1', 'counted');

-- Steps a worker has claimed: one whose provider call has not begun (no calling mark)
-- is stopped -- the worker's app.begin_calls refuses it --; one already being called
-- may be at the provider: it stays.
SELECT pg_temp.attempt_of((private.submit_message(:'t', NULL, '{"to": "+14155550555", "body": "in the worker"}')
                           #>> '{message,id}')::uuid) AS w1 \gset
SELECT pg_temp.attempt_of((private.submit_message(:'t', NULL, '{"to": "+14155550556", "body": "being called"}')
                           #>> '{message,id}')::uuid) AS w2 \gset
SELECT app.claim_attempts(ARRAY[:'w1', :'w2']::uuid[]) IS NOT NULL AS claimed \gset
SELECT app.begin_calls(ARRAY[:'w2']::uuid[], ARRAY[1]) AS calling \gset
SELECT app.erase_addresses(:'token', '["+14155550555", "+14155550556"]') IS NOT NULL AS e3 \gset
SELECT results_eq(format($$SELECT status, error_code FROM app.message_attempts WHERE id IN (%L, %L) ORDER BY id = %L DESC$$,
                         :'w1', :'w2', :'w1'),
  $$VALUES ('rejected', 'erased'), ('claimed', NULL::text)$$,
  'a claimed step not called yet is stopped; one being called stays (it may be at the provider)');
SELECT is(app.begin_calls(ARRAY[:'w1']::uuid[], ARRAY[1]), '[]'::jsonb, 'the worker may not call the stopped one');
SELECT results_eq(format($$SELECT m.status, m.error_code, m.to_address, m.body FROM app.messages m
                             JOIN app.message_attempts a ON a.message_id = m.id WHERE a.id = %L$$, :'w1'),
  $$VALUES ('rejected', 'erased', '[erased]', '[erased]')$$, 'its message ends rejected, erased');

-- The one being called is handed off after the erasure: the provider's copy goes too.
SELECT app.record_handoff(:'w2', 'SM-in-flight', 'queued') IS NOT NULL AS h2 \gset
SELECT results_eq($$SELECT convert_from(payload, 'UTF8')::jsonb ->> 'provider_message_id' FROM pgqueuer.pgqueuer
                     WHERE entrypoint = 'provider_delete' ORDER BY id$$,
  $$VALUES ('SM-forget'), ('SM-in-flight')$$, 'a hand-off recorded after the erasure enqueues its provider_delete');

-- Outside an erasure the ledgers stay append-only, and an erasure may only redact.
SELECT throws_ok($$UPDATE app.consent_events SET address = '+1999'$$, 'HM405', NULL, 'UPDATE outside an erasure: HM405');
SELECT set_config('hermes.erasing', 'on', true) IS NOT NULL AS on_ \gset
SELECT throws_ok($$UPDATE app.consent_events SET kind = 'opt_in'$$, 'HM405', NULL,
  'even while erasing, changing a column that is not redactable: HM405');
SELECT set_config('hermes.erasing', 'off', true) IS NOT NULL AS off_ \gset

SELECT * FROM finish();
ROLLBACK;
