-- Erases people's addresses for a tenant (GDPR art. 17 / CCPA), set-based, in one
-- transaction:
--   * an 'erasure' tombstone per address (app.suppression_events, no address, only
--     the peppered hash): they are never messaged again by this tenant;
--   * their messages -- found by the address of ANY step (app.message_attempts), not
--     only the current one: a cascade's later step to another channel's address
--     counts -- lose recipient and body ('[erased]'); every step of such a message
--     loses its content, the steps to an erased address their recipient, and error
--     texts that quote an address go; steps not sent yet -- pending, waiting, or
--     claimed by a worker that has not begun its provider call -- are rejected
--     (error_code 'erased'): none of them will go, and a message whose current step
--     that was ends rejected (private.settle_attempts); their replayable idempotency answers are
--     redacted; their receipts' payloads and error texts are redacted; their events'
--     details that quote an address or a body are replaced by {"redacted": "erasure"};
--   * where the provider can delete its copy (Twilio), a 'provider_delete' job per
--     handed-off step: only provider, account, environment and provider message id;
--   * the cooldown and content-dedup stores (app.contact_history, app.recent_contents:
--     hashes) forget them;
--   * the consent and suppression ledgers keep their rows (the history stays provable)
--     without the address or evidence; the caches lose the address;
--   * inbound messages from them lose sender, body and params; their conversations go;
--   * the identity graph (#5) loses them: the phone / email rows and their links go,
--     and every landed file row and extraction that held them is redacted (the row's
--     payload emptied, its extracted values and its error detail cleared) -- rows
--     where the address was unreadable were never extracted and cannot be found;
--   * app.erasures records each erasure with the counts, without the address.
-- A receipt that arrives later for an erased step is stored redacted
-- (private.insert_receipts), and the cascade (private.settle_attempts) only ever copies
-- the redacted step back into its message: erased rows stay erased.
-- Locks, in the claim's order (app.claim_attempts: private.lock_attempts, then
-- private.lock_addresses): the affected attempts first (id order), then the addresses,
-- then the rows are changed; so an erasure and a claim batch never deadlock.
-- The ledgers' redactions pass their append-only triggers because this transaction
-- sets hermes.erasing and changes only the columns each trigger names.
-- p_addresses: a JSON array of E.164 numbers or emails. Returns
-- {"erased": n, "refused": [{index, code, detail}], "counts": {...}}.
CREATE OR REPLACE FUNCTION private.erase_addresses(p_tenant_id uuid, p_api_key_id uuid, p_addresses jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_keys     text[];
  v_hashes   bytea[];
  v_refused  jsonb;
  v_counts   jsonb := '{}';
  v_n        bigint;
  v_attempts uuid[];
  v_bodies   text[];
  v_stopping uuid[];
  v_erased   constant jsonb := '{"redacted": "erasure"}';
BEGIN
  IF p_addresses IS NULL OR jsonb_typeof(p_addresses) <> 'array' OR jsonb_array_length(p_addresses) = 0 THEN
    PERFORM private.raise_problem(422, 'invalid_addresses', 'Give "addresses": a non-empty JSON array.');
  END IF;
  IF jsonb_array_length(p_addresses) > 100 THEN
    PERFORM private.raise_problem(413, 'too_many_addresses', 'At most 100 addresses an erasure request.',
      'Split the request.');
  END IF;
  SELECT array_agg(DISTINCT k.key) FILTER (WHERE k.key IS NOT NULL),
         coalesce(jsonb_agg(jsonb_build_object('index', k.n - 1, 'code', 'invalid_address',
                    'detail', format('Not an E.164 phone number, an email address or a push token: %s.', coalesce(left(k.raw, 40), 'null'))))
                  FILTER (WHERE k.key IS NULL), '[]')
    INTO v_keys, v_refused
    FROM (SELECT e.n, e.item #>> '{}' AS raw,
                 CASE WHEN jsonb_typeof(e.item) = 'string' THEN private.address_key(e.item #>> '{}') END AS key
            FROM jsonb_array_elements(p_addresses) WITH ORDINALITY e(item, n)) k;
  IF v_keys IS NULL THEN
    RETURN jsonb_build_object('erased', 0, 'refused', v_refused, 'counts', v_counts);
  END IF;
  v_hashes := ARRAY(SELECT private.address_hash(k) FROM unnest(v_keys) k);

  -- The claim's lock order: the attempts of the affected messages (every step of a
  -- message with a step to an erased address, or whose current recipient is one), in
  -- id order, then the addresses. Looked for again once the addresses are locked: a
  -- message accepted meanwhile is included (its attempts locked then: the one place
  -- of the reverse order; a deadlock with a claim there aborts one side, which retries).
  v_attempts := private.erasure_attempts(p_tenant_id, v_keys);
  PERFORM private.lock_attempts(v_attempts);
  PERFORM private.lock_addresses(v_hashes);
  v_attempts := private.erasure_attempts(p_tenant_id, v_keys);
  PERFORM private.lock_attempts(v_attempts);
  PERFORM set_config('hermes.erasing', 'on', true);

  -- The tombstones first: from here on no message may go to them.
  INSERT INTO app.suppression_events (tenant_id, address, address_hash, list, action, source, api_key_id)
  SELECT p_tenant_id, NULL, h, 'erasure', 'add', 'erasure', p_api_key_id FROM unnest(v_hashes) h;

  -- What was sent to them, as texts (to find it quoted in event details).
  SELECT coalesce(array_agg(DISTINCT v.t), '{}') INTO v_bodies
    FROM app.message_attempts a
   CROSS JOIN LATERAL (VALUES (a.content ->> 'body'), (a.content ->> 'subject'), (a.content ->> 'html'),
                              (a.content ->> 'title')) v(t)
   WHERE a.id = ANY (v_attempts)
     AND a.message_created_at = ANY (ARRAY(SELECT DISTINCT private.uuid7_time(i) FROM unnest(v_attempts) i))
     AND length(v.t) >= 4 AND v.t <> '[erased]';

  -- The provider's copies: a deletion job per handed-off step at a provider that can
  -- delete (Twilio), in this transaction (outbox). No address, no body in the job.
  SELECT count(private.enqueue_job('provider_delete', jsonb_build_object(
           'provider', a.provider, 'provider_account_id', a.provider_account_id,
           'environment', t.environment, 'provider_message_id', a.provider_message_id)))
    INTO v_n
    FROM app.message_attempts a JOIN app.tenants t ON t.id = a.tenant_id
   WHERE a.id = ANY (v_attempts)
     AND a.message_created_at = ANY (ARRAY(SELECT DISTINCT private.uuid7_time(i) FROM unnest(v_attempts) i))
     AND a.provider = 'twilio' AND a.provider_message_id IS NOT NULL;

  -- The steps that will never go now: not sent yet (pending, waiting), or claimed by a
  -- worker that has not begun its provider call (no calling mark: app.begin_calls will
  -- refuse it). A step whose call has begun -- now or under an earlier claim, whose
  -- outcome is still open -- may be at the provider: it stays (its reconcile checks
  -- eligibility, the tombstone, before any resend).
  v_stopping := ARRAY(
    SELECT a.id FROM app.message_attempts a
     WHERE a.id = ANY (v_attempts)
       AND a.message_created_at = ANY (ARRAY(SELECT DISTINCT private.uuid7_time(i) FROM unnest(v_attempts) i))
       AND (a.status IN ('pending', 'waiting')
            OR (a.status = 'claimed' AND a.calling_claim_no IS NULL))
     ORDER BY a.id);

  WITH affected AS MATERIALIZED (
    -- (a message refused at intake has no attempt: found by its recipient)
    SELECT a.message_id, a.message_created_at
      FROM app.message_attempts a
     WHERE a.id = ANY (v_attempts)
       AND a.message_created_at = ANY (ARRAY(SELECT DISTINCT private.uuid7_time(i) FROM unnest(v_attempts) i))
    UNION
    SELECT m.id, m.created_at FROM app.messages m WHERE m.tenant_id = p_tenant_id AND m.to_address = ANY (v_keys)
  ), erased AS (
    -- (a message whose current step is stopped here ends below: private.settle_attempts)
    UPDATE app.messages m
       SET to_address = CASE WHEN m.to_address = ANY (v_keys) OR m.to_address IS NULL THEN '[erased]'
                             ELSE m.to_address END,
           body = '[erased]', updated_at = now(),
           error_message = CASE WHEN private.holds_erased(m.error_message, v_keys) THEN NULL
                                ELSE m.error_message END
      FROM affected f
     WHERE m.id = f.message_id AND m.created_at = f.message_created_at AND m.tenant_id = p_tenant_id
    RETURNING m.id, m.created_at, m.idempotency_key, m.to_address, m.error_message
  ), attempts AS (
    -- Every step loses its content; the steps to them their recipient; steps not sent
    -- yet will never go.
    UPDATE app.message_attempts a
       SET to_address = CASE WHEN a.to_address = ANY (v_keys) OR a.to_address IS NULL THEN '[erased]'
                             ELSE a.to_address END,
           content = '{"body": "[erased]", "redacted": "erasure"}',
           error_message = CASE WHEN a.id = ANY (v_stopping) THEN 'The recipient was erased.'
                                WHEN a.to_address = ANY (v_keys) OR private.holds_erased(a.error_message, v_keys)
                                THEN NULL ELSE a.error_message END,
           status = CASE WHEN a.id = ANY (v_stopping) THEN 'rejected' ELSE a.status END,
           error_code = CASE WHEN a.id = ANY (v_stopping) THEN 'erased' ELSE a.error_code END,
           reasons = CASE WHEN a.id = ANY (v_stopping)
                          THEN '[{"code": "suppressed", "list": "erasure", "scope": "tenant"}]'::jsonb
                          ELSE a.reasons END,
           completed_at = CASE WHEN a.id = ANY (v_stopping) THEN now() ELSE a.completed_at END,
           updated_at = now()
      FROM affected f
     WHERE a.message_id = f.message_id AND a.message_created_at = f.message_created_at
    RETURNING a.id, a.error_code
  ), keys AS (
    UPDATE app.idempotency_keys k
       SET response = k.response || jsonb_build_object('to', e.to_address, 'body', '[erased]',
                                                       'error_message', e.error_message)
      FROM erased e
     WHERE k.tenant_id = p_tenant_id AND k.key = e.idempotency_key AND k.message_id = e.id
    RETURNING 1
  ), receipts AS (
    UPDATE app.receipts r
       SET payload = v_erased, error_message = NULL
     WHERE r.attempt_id = ANY (v_attempts)
       AND r.message_created_at = ANY (ARRAY(SELECT DISTINCT private.uuid7_time(i) FROM unnest(v_attempts) i))
       AND r.payload IS DISTINCT FROM v_erased
    RETURNING 1
  ), events AS (
    -- Event details that quote an address or what was sent (provider error texts,
    -- reconcile candidates).
    UPDATE app.message_events ev
       SET details = v_erased
      FROM affected f
     WHERE ev.message_id = f.message_id AND ev.message_created_at = f.message_created_at
       AND ev.details <> v_erased
       AND (private.holds_erased(ev.details::text, v_keys)
            OR EXISTS (SELECT 1 FROM unnest(v_bodies) b
                        WHERE strpos(ev.details::text, b) > 0
                           OR strpos(ev.details::text, trim(both '"' FROM to_jsonb(b)::text)) > 0))
    RETURNING 1
  )
  SELECT jsonb_build_object('messages', (SELECT count(*) FROM erased),
                            'attempts', (SELECT count(*) FROM attempts),
                            'attempts_rejected', cardinality(v_stopping),
                            'idempotency_keys', (SELECT count(*) FROM keys),
                            'receipts', (SELECT count(*) FROM receipts),
                            'events', (SELECT count(*) FROM events))
    INTO v_counts;
  v_counts := v_counts || jsonb_build_object('provider_deletions', v_n);
  -- The cascade decides what the stopped steps mean for their messages: one whose
  -- current step stopped ends rejected ('erased'), its later steps stopped too.
  PERFORM private.settle_attempts(v_stopping);

  UPDATE app.consent_events SET address = NULL, evidence = v_erased
   WHERE tenant_id = p_tenant_id AND address_hash = ANY (v_hashes) AND address IS NOT NULL;
  GET DIAGNOSTICS v_n = ROW_COUNT;
  v_counts := v_counts || jsonb_build_object('consent_events', v_n);
  UPDATE app.consent_state SET address = NULL
   WHERE tenant_id = p_tenant_id AND address_hash = ANY (v_hashes);
  UPDATE app.suppression_events SET address = NULL, reason = NULL, evidence = v_erased
   WHERE tenant_id = p_tenant_id AND address_hash = ANY (v_hashes) AND address IS NOT NULL;
  GET DIAGNOSTICS v_n = ROW_COUNT;
  v_counts := v_counts || jsonb_build_object('suppression_events', v_n);
  UPDATE app.suppressions SET address = NULL, reason = NULL
   WHERE tenant_id = p_tenant_id AND address_hash = ANY (v_hashes);
  -- The cooldown and content-dedup stores (hashes only): nothing left to pace, the
  -- tombstone refuses every later message.
  DELETE FROM app.contact_history WHERE tenant_id = p_tenant_id AND address_hash = ANY (v_hashes);
  DELETE FROM app.recent_contents WHERE tenant_id = p_tenant_id AND address_hash = ANY (v_hashes);
  UPDATE app.inbound_messages SET from_address = NULL, body = NULL, params = v_erased
   WHERE tenant_id = p_tenant_id AND from_address = ANY (v_keys);
  GET DIAGNOSTICS v_n = ROW_COUNT;
  v_counts := v_counts || jsonb_build_object('inbound_messages', v_n);
  DELETE FROM app.conversations WHERE tenant_id = p_tenant_id AND contact_address = ANY (v_keys);
  GET DIAGNOSTICS v_n = ROW_COUNT;
  v_counts := v_counts || jsonb_build_object('conversations', v_n);
  v_counts := v_counts || private.erase_from_graph(p_tenant_id, v_keys);
  PERFORM set_config('hermes.erasing', 'off', true);

  INSERT INTO app.erasures (tenant_id, address_hash, api_key_id, counts)
  SELECT p_tenant_id, h, p_api_key_id, v_counts FROM unnest(v_hashes) h;
  PERFORM private.audit(p_tenant_id, p_api_key_id, 'erasure', NULL,
                        jsonb_build_object('addresses', cardinality(v_hashes), 'counts', v_counts));
  RETURN jsonb_build_object('erased', cardinality(v_hashes), 'refused', v_refused, 'counts', v_counts);
END
$$;
COMMENT ON FUNCTION private.erase_addresses(uuid, uuid, jsonb) IS
  'Erases addresses for a tenant: personal data redacted everywhere, a hashed tombstone keeps them unmessaged.';

-- The attempts an erasure of p_keys touches, in id order: every step of each message
-- of the tenant that has a step to one of them (app.message_attempts_tenant_to_idx) or
-- whose current recipient is one.
CREATE OR REPLACE FUNCTION private.erasure_attempts(p_tenant_id uuid, p_keys text[])
RETURNS uuid[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  -- (from the messages found to their steps by the (message_id, message_created_at,
  -- attempt_no) key; finding a message by its current recipient scans the tenant's
  -- messages, as erasure always did: erasures are rare)
  SELECT coalesce(array_agg(DISTINCT a.id ORDER BY a.id), '{}')
    FROM (SELECT x.message_id, x.message_created_at FROM app.message_attempts x
           WHERE x.tenant_id = p_tenant_id AND x.to_address = ANY (p_keys)
          UNION
          SELECT m.id, m.created_at FROM app.messages m
           WHERE m.tenant_id = p_tenant_id AND m.to_address = ANY (p_keys)) f
    JOIN app.message_attempts a ON a.message_id = f.message_id AND a.message_created_at = f.message_created_at
   WHERE a.tenant_id = p_tenant_id
$$;
COMMENT ON FUNCTION private.erasure_attempts(uuid, text[]) IS
  'The attempts of the messages an erasure touches (a step to an erased address, or the current recipient), in id order.';

-- The identity graph's part of an erasure (above): p_keys are canonical addresses.
-- Under the tenant's merge lock (a merge running now finishes first; one starting later
-- finds the addresses gone from its extractions). Identities whose natural key was
-- derived from an erased address (no property: first phone or email) are re-keyed, so
-- that the key cannot give the address back. The landed rows that held an address --
-- by their extractions, or by their raw text: a value the parser dropped (a phone with
-- an extension, say) is still in the file -- are redacted, and so are the rejection
-- details that quoted one. Finding them scans the tenant's extractions and landed rows
-- (no index on their contents): erasures are rare, imports are large.
CREATE OR REPLACE FUNCTION private.erase_from_graph(p_tenant_id uuid, p_keys text[])
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_links bigint;
  v_n bigint;
  v_rows bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('hermes.merge_import:' || p_tenant_id::text, 0));
  -- Keys made of an erased address: re-keyed (to nothing anyone can derive).
  UPDATE app.identities d
     SET identity_hash = sha256(convert_to('erased:' || d.id::text, 'UTF8'))
   WHERE d.tenant_id = p_tenant_id AND d.property_id IS NULL
     AND (d.id IN (SELECT ip.identity_id FROM app.identity_phones ip JOIN app.phone_numbers p ON p.id = ip.phone_id
                    WHERE p.tenant_id = p_tenant_id AND p.e164 = ANY (p_keys))
          OR d.id IN (SELECT ie.identity_id FROM app.identity_emails ie JOIN app.email_addresses e ON e.id = ie.email_id
                       WHERE e.tenant_id = p_tenant_id AND e.address = ANY (p_keys)));
  WITH phones AS (
    DELETE FROM app.identity_phones ip USING app.phone_numbers p
     WHERE p.tenant_id = p_tenant_id AND p.e164 = ANY (p_keys) AND ip.phone_id = p.id
    RETURNING 1
  ), emails AS (
    DELETE FROM app.identity_emails ie USING app.email_addresses e
     WHERE e.tenant_id = p_tenant_id AND e.address = ANY (p_keys) AND ie.email_id = e.id
    RETURNING 1
  )
  SELECT (SELECT count(*) FROM phones) + (SELECT count(*) FROM emails) INTO v_links;
  DELETE FROM app.phone_numbers WHERE tenant_id = p_tenant_id AND e164 = ANY (p_keys);
  DELETE FROM app.email_addresses WHERE tenant_id = p_tenant_id AND address = ANY (p_keys);

  CREATE TEMP TABLE IF NOT EXISTS erased_rows (import_id bigint, row_number bigint) ON COMMIT DROP;
  TRUNCATE pg_temp.erased_rows;
  -- The file rows that held an address (a re-parse's extractions name its source's rows).
  INSERT INTO pg_temp.erased_rows
  SELECT DISTINCT coalesce(i.source_import_id, i.id), x.row_number
    FROM app.import_extractions x JOIN app.imports i ON i.id = x.import_id
   WHERE x.tenant_id = p_tenant_id AND (x.phones && p_keys OR x.emails && p_keys OR x.sender = ANY (p_keys));
  -- ... and those whose raw text holds one: a field with the number's digits (its
  -- national part at least; formatting, extensions and prefixes aside) or the email.
  INSERT INTO pg_temp.erased_rows
  SELECT f.import_id, f.row_number
    FROM app.file_rows f
   WHERE f.tenant_id = p_tenant_id AND f.payload <> '[]'
     AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(f.payload) v(field)
                  WHERE private.holds_erased(v.field, p_keys));
  UPDATE app.file_rows f SET payload = '[]', error = 'erased: the row held an erased address'
    FROM pg_temp.erased_rows r
   WHERE f.import_id = r.import_id AND f.row_number = r.row_number AND f.tenant_id = p_tenant_id;
  GET DIAGNOSTICS v_rows = ROW_COUNT;
  UPDATE app.import_extractions x
     SET first_name = NULL, last_name = NULL, name_norm = NULL, phones = '{}', emails = '{}',
         line1 = NULL, city = NULL, region = NULL, postal_code = NULL, external_id = NULL,
         sender = NULL, rejected_detail = NULL
    FROM app.imports i, pg_temp.erased_rows r
   WHERE i.id = x.import_id AND x.tenant_id = p_tenant_id
     AND coalesce(i.source_import_id, i.id) = r.import_id AND x.row_number = r.row_number;
  UPDATE app.import_errors e SET detail = NULL
    FROM app.imports i, pg_temp.erased_rows r
   WHERE i.id = e.import_id AND e.tenant_id = p_tenant_id
     AND coalesce(i.source_import_id, i.id) = r.import_id AND e.row_number = r.row_number;
  -- Details that quote an address (a rejected value, 40 characters of it), wherever.
  UPDATE app.import_errors e SET detail = NULL
   WHERE e.tenant_id = p_tenant_id AND e.detail IS NOT NULL AND private.holds_erased(e.detail, p_keys);
  UPDATE app.import_extractions x SET rejected_detail = NULL
   WHERE x.tenant_id = p_tenant_id AND x.rejected_detail IS NOT NULL AND private.holds_erased(x.rejected_detail, p_keys);
  RETURN jsonb_build_object('graph_links', v_links, 'import_rows', v_rows);
END
$$;
COMMENT ON FUNCTION private.erase_from_graph(uuid, text[]) IS
  'Erasure in the identity graph: the addresses and their links go, the import rows that held them are redacted.';

-- Whether a text holds one of the erased addresses: an email anywhere in it (any case),
-- or a phone number's digits -- the whole E.164 number's, or its last ten (the national
-- number in the countries that have ten), within a run of digits of the text with its
-- formatting taken out. Over-matching redacts a little more, never less.
CREATE OR REPLACE FUNCTION private.holds_erased(p_text text, p_keys text[])
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT EXISTS (
    SELECT 1 FROM unnest(p_keys) k
     WHERE CASE WHEN k LIKE '+%'
                THEN length(regexp_replace(p_text, '\D', '', 'g')) >= 7
                     AND (strpos(regexp_replace(p_text, '[\s().+-]', '', 'g'), substr(k, 2)) > 0
                          OR strpos(regexp_replace(p_text, '[\s().+-]', '', 'g'), right(k, 10)) > 0)
                ELSE strpos(lower(p_text), k) > 0 END)
$$;
COMMENT ON FUNCTION private.holds_erased(text, text[]) IS
  'Whether a text holds an erased address (an email, or a phone number''s digits, formatting aside).';
