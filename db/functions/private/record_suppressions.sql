-- Adds addresses to, or removes them from, a suppression list, set-based: thousands in
-- one call (the API's JSON list or CSV upload; #5's imports later). p_tenant_id NULL
-- acts on the global lists (operators). p_entries: a JSON array of addresses (strings:
-- E.164 or email; the API has already read national forms) or of objects
-- {"address", "reason"?}. Each address's lock is taken before the insert (like an
-- opt-out's). Adding a listed address again or removing an unlisted one is recorded
-- and changes nothing. Erasure tombstones are written by private.erase_addresses,
-- never here, and cannot be removed.
-- Returns {"list", "action", "recorded": n, "refused": [{index, code, detail}]}.
CREATE OR REPLACE FUNCTION private.record_suppressions(
  p_tenant_id uuid, p_api_key_id uuid, p_action text, p_list text, p_entries jsonb,
  p_reason text DEFAULT NULL, p_source text DEFAULT 'api')
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_result jsonb;
  v_hashes bytea[];
BEGIN
  IF p_action IS NULL OR p_action NOT IN ('add', 'remove') THEN
    PERFORM private.raise_problem(422, 'invalid_action', 'The action must be add or remove.');
  END IF;
  IF p_list IS NULL OR p_list NOT IN ('do_not_contact', 'litigator', 'hard_bounce', 'complaint') THEN
    PERFORM private.raise_problem(422, 'invalid_list',
      format('Unknown suppression list %s.', coalesce(left(p_list, 40), 'null')),
      'Use do_not_contact, litigator, hard_bounce or complaint.');
  END IF;
  IF p_entries IS NULL OR jsonb_typeof(p_entries) <> 'array' THEN
    PERFORM private.raise_problem(422, 'invalid_entries', 'The entries must be a JSON array of addresses.');
  END IF;
  IF jsonb_array_length(p_entries) > 10000 THEN
    PERFORM private.raise_problem(413, 'too_many_entries',
      format('At most 10000 addresses a request; this one has %s.', jsonb_array_length(p_entries)),
      'Split the list.');
  END IF;
  IF p_reason IS NOT NULL AND length(p_reason) > 500 THEN
    PERFORM private.raise_problem(422, 'invalid_reason', 'The reason takes at most 500 characters.');
  END IF;

  WITH items AS (
    SELECT e.n - 1 AS idx,
           CASE jsonb_typeof(e.item) WHEN 'string' THEN e.item #>> '{}'
                                     WHEN 'object' THEN e.item ->> 'address' END AS raw,
           CASE WHEN jsonb_typeof(e.item) = 'object' THEN e.item ->> 'reason' END AS item_reason
      FROM jsonb_array_elements(p_entries) WITH ORDINALITY e(item, n)
  ), keyed AS (
    SELECT i.*, private.address_key(i.raw) AS address FROM items i
  )
  SELECT jsonb_build_object(
           'valid', coalesce(jsonb_agg(jsonb_build_object('address', k.address,
                                                          'reason', coalesce(left(k.item_reason, 500), p_reason)))
                             FILTER (WHERE k.address IS NOT NULL), '[]'),
           'refused', coalesce(jsonb_agg(jsonb_build_object(
                                'index', k.idx, 'code', 'invalid_address',
                                'detail', format('Not an E.164 phone number, an email address or a push token: %s.',
                                                 coalesce(left(k.raw, 40), 'null'))) ORDER BY k.idx)
                               FILTER (WHERE k.address IS NULL), '[]'))
    INTO v_result
    FROM keyed k;

  v_hashes := ARRAY(SELECT private.address_hash(v ->> 'address') FROM jsonb_array_elements(v_result -> 'valid') v);
  PERFORM private.lock_addresses(v_hashes);
  INSERT INTO app.suppression_events (tenant_id, address, address_hash, list, action, source, reason, api_key_id)
  SELECT p_tenant_id, v ->> 'address', private.address_hash(v ->> 'address'), p_list, p_action, p_source,
         v ->> 'reason', p_api_key_id
    FROM jsonb_array_elements(v_result -> 'valid') v;

  PERFORM private.audit(p_tenant_id, p_api_key_id, 'suppression.' || p_action, p_list,
                        jsonb_build_object('recorded', jsonb_array_length(v_result -> 'valid'),
                                           'refused', jsonb_array_length(v_result -> 'refused')));
  RETURN jsonb_build_object('list', p_list, 'action', p_action,
                            'recorded', jsonb_array_length(v_result -> 'valid'),
                            'refused', v_result -> 'refused');
END
$$;
COMMENT ON FUNCTION private.record_suppressions(uuid, uuid, text, text, jsonb, text, text) IS
  'Adds addresses to / removes them from a suppression list, set-based, under the addresses'' locks.';
