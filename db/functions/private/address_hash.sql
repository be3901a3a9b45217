-- Addresses, one canonical form each, and the keys the compliance rules use.
--
-- private.address_key: the canonical form of an address Hermes may store, or NULL.
-- Phones must already be E.164 (the API and the import parser read what people type
-- -- national forms, tel: URIs, full-width digits -- with phonenumbers and the
-- tenant's default country; SQL only re-validates). Emails are trimmed and lower-cased
-- (local part too: an opt-out of John@x.com also covers john@x.com -- the safe error).
-- Push registration tokens (16 to 4096 characters of [A-Za-z0-9_:.-], letters and
-- digits both) are kept as given: they are case-sensitive.
CREATE OR REPLACE FUNCTION private.address_key(p_address text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE
    WHEN p_address ~ '^\+[1-9][0-9]{6,14}$' THEN p_address
    WHEN lower(btrim(p_address)) ~ '^[^@\s<>(),;:"\[\]]{1,64}@[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$'
         AND length(btrim(p_address)) <= 254
      THEN lower(btrim(p_address))
    -- a push registration token (FCM's are ~160 characters of [A-Za-z0-9_:-]), as given
    WHEN p_address ~ '^[A-Za-z0-9_:.-]{16,}$' AND length(p_address) <= 4096
         AND p_address ~ '[A-Za-z]' AND p_address ~ '[0-9]'
      THEN p_address
  END
$$;
COMMENT ON FUNCTION private.address_key(text) IS
  'The canonical form of an address (E.164 phone, lower-cased email, push token as given), or NULL when it is none.';

-- The one-way key of a canonical address: sha256 of the deployment's secret pepper
-- (private.settings address_pepper) and the address. Suppression tombstones of erased
-- people keep only this. (Inlined into the calling statement: the pepper is read once.)
CREATE OR REPLACE FUNCTION private.address_hash(p_address text)
RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  SELECT sha256(convert_to((SELECT s.value FROM private.settings s WHERE s.key = 'address_pepper') || p_address,
                           'UTF8'))
$$;
COMMENT ON FUNCTION private.address_hash(text) IS
  'sha256(pepper || canonical address): the key of consent, suppressions and tombstones.';

-- Serializes everything that decides about one address: recording an opt-out (or any
-- consent or suppression change) and claiming a send to it take this lock, so that of
-- an opt-out and a claim one provably came first. Transaction-scoped advisory locks,
-- taken in one order (sorted keys), so two batches cannot deadlock. Keys collide only
-- by 64-bit hash: at worst two addresses wait for each other.
CREATE OR REPLACE FUNCTION private.lock_addresses(p_hashes bytea[])
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_key bigint;
BEGIN
  FOR v_key IN
    SELECT DISTINCT ('x' || encode(substr(h, 1, 8), 'hex'))::bit(64)::bigint
      FROM unnest(p_hashes) h WHERE h IS NOT NULL ORDER BY 1
  LOOP
    PERFORM pg_advisory_xact_lock(v_key);
  END LOOP;
END
$$;
COMMENT ON FUNCTION private.lock_addresses(bytea[]) IS
  'Takes the transaction-scoped advisory lock of each address hash, in sorted order.';
